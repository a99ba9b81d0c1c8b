"""``params.yaml`` as one frozen pydantic model per section; errors name key, value, allowed.

This module is the configuration ring's: it imports no science module, so editing the science
reruns only the stages that run it (a stage's DVC deps are its import closure).
"""

from __future__ import annotations

import difflib
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import AfterValidator, ConfigDict, Field

from prunekit import data, errors, names

PARAMS_FILE = "params.yaml"
_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)  # No 2.0 for 2, no "1" for 1.


class ParamsError(errors.InputError):
    """Raised when ``params.yaml`` is missing, malformed or holds invalid values."""


def _distinct_list(item: Any, each: str) -> Any:
    """The type of a non-empty YAML list of distinct items, read as a tuple."""

    def _distinct(items: tuple) -> tuple:
        if repeated := sorted({item for item in items if items.count(item) > 1}):
            raise ValueError(f"duplicated: {repeated}")
        return items

    return Annotated[tuple[item, ...], AfterValidator(_distinct), Field(
        min_length=1, strict=False, description=f"a non-empty list of distinct items, each {each}")]


_Percent = Annotated[int | float, Field(ge=0, le=100)]  # An int stays an int; NaN is refused.
_RecipeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Section(pydantic.BaseModel):
    model_config = _CONFIG


class RecipeParams(_Section):
    """How one recipe trains its networks; the fields of ``training.Recipe``."""

    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam or sgd")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="a number > 0")
    momentum: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False,
                            description="a number from 0 to below 1 (sgd only)")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="cosine or constant")
    l1: _NonNegative = Field(0.0, description="a number >= 0 (0 is off)")
    group_lasso: _NonNegative = Field(0.0, description="a number >= 0 (0 is off)")
    penalty_warmup: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                                  description="a fraction of the training from 0 to 1")
    adam_eps: float = Field(1e-8, gt=0, allow_inf_nan=False, description="a number > 0 (adam)")
    init: Literal["pytorch", "glorot"] = Field("pytorch", description="pytorch or glorot")
    batch_size: Annotated[int, Field(ge=1)] | None = Field(
        None, description="null (train.batch_size) or an integer >= 1")

    @pydantic.model_validator(mode="after")
    def _optimizer_fields_match(self) -> RecipeParams:
        if self.momentum != 0 and self.optimizer != "sgd":
            raise ValueError(f"momentum: got {self.momentum!r}; allowed: 0 unless optimizer is "
                             "sgd")
        if self.adam_eps != RecipeParams.model_fields["adam_eps"].default and (
                self.optimizer != "adam"):
            raise ValueError(f"adam_eps: got {self.adam_eps!r}; allowed: only with optimizer "
                             "adam")
        return self


_RECIPE_FIELDS = tuple(RecipeParams.model_fields)
_Recipes = Annotated[dict[_RecipeName, RecipeParams], Field(
    min_length=1, description="a non-empty mapping of recipe names to their fields, e.g. "
    "{adam: {optimizer: adam, lr: 0.001}}")]


class DownloadParams(_Section):
    """Which dataset to fetch and an optional local folder to take it from first."""

    dataset: Literal[tuple(data.CONTENT_MD5)] = Field(
        description="one of " + ", ".join(data.CONTENT_MD5))
    source_dir: Annotated[str, Field(min_length=1)] | None = Field(
        description="null or a folder path")


class TrainParams(_Section):
    """Architecture, seeds and recipes of the dense networks (one per recipe and seed)."""

    hidden_sizes: tuple[Annotated[int, Field(gt=0)], ...] = Field(
        min_length=1, strict=False,
        description="a non-empty list of positive integers, e.g. [1000, 1000, 500, 200]")
    epochs: int = Field(ge=1, description="an integer >= 1")
    batch_size: int = Field(ge=1, description="an integer >= 1")
    seeds: _distinct_list(Annotated[int, Field(ge=0)], "an integer >= 0")  # First: benchmarked.
    recipes: _Recipes  # The first is the reference.
    validation: int = Field(ge=1, le=data.TRAIN_SET_SIZE // 2, description=(
        f"an integer from 1 to {data.TRAIN_SET_SIZE // 2}"))  # Held out of the training images.
    limit: Annotated[int, Field(ge=1, le=data.TRAIN_SET_SIZE)] | None = Field(
        description=f"null or an integer from 1 to {data.TRAIN_SET_SIZE}")

    @pydantic.model_validator(mode="after")
    def _limit_within_training_images(self) -> TrainParams:
        if self.limit is not None and self.limit > data.TRAIN_SET_SIZE - self.validation:
            raise ValueError(f"limit: got {self.limit}; allowed: null or at most "
                             f"{data.TRAIN_SET_SIZE - self.validation}, the training images "
                             f"left after the {self.validation} of train.validation")
        return self
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = Field(  # Only train
        description="auto, cpu, cuda or cuda:N")  # needs the device: training.resolve_device.
    num_threads: Annotated[int, Field(ge=1)] | None = Field(description="null or an integer >= 1")


class PruneParams(_Section):
    """Pruning percentages (0-100), methods, random-control draws and single-layer pruning."""

    k_list: _distinct_list(_Percent, "a number from 0 to 100")
    methods: _distinct_list(Literal[names.METHODS], "one of " + ", ".join(names.METHODS))
    random_draws: int = Field(ge=0, description="an integer >= 0")
    layer_sensitivity: _RecipeName | None = Field(  # Its networks get each matrix pruned alone.
        description="null or a recipe name of train.recipes")


class BenchmarkParams(_Section):
    """Inference timing settings."""

    methods: _distinct_list(Literal[names.METHODS], "one of " + ", ".join(names.METHODS))
    batch_sizes: _distinct_list(Annotated[int, Field(ge=1)], "an integer >= 1")
    k_list: _distinct_list(_Percent, "a number from 0 to 100")
    runs: int = Field(ge=1, description="an integer >= 1")
    rounds: int = Field(ge=1, description="an integer >= 1")
    block_seconds: float = Field(gt=0, allow_inf_nan=False, description="a finite number > 0")
    num_threads: int = Field(ge=1, description="an integer >= 1")


class SummarizeParams(_Section):
    """The pruned networks the metrics report, as ``{method: [k, ...]}`` (in prune.k_list)."""

    accuracy_cases: dict[Literal[names.METHODS], _distinct_list(_Percent, "a number from 0 to 100")
                         ] = Field(description="a mapping of methods to lists of k, e.g. "
                                   "{weight: [90, 95], unit: [50, 70]}")
    speedup_cases: dict[Literal[names.METHODS], _distinct_list(_Percent, "a number from 0 to 100")
                        ] = Field(description="a mapping of methods to lists of k, e.g. "
                                  "{weight: [90, 95, 99], unit: [90]}")
    speedup_batch_sizes: _distinct_list(Annotated[int, Field(ge=1)], "an integer >= 1")
    table_batch_size: int = Field(ge=1, description="an integer >= 1")


class PlotParams(_Section):
    """Rendering settings of the matplotlib charts."""

    dpi: int = Field(ge=30, le=1200, description="an integer from 30 to 1200")


SECTIONS = {"download": DownloadParams, "train": TrainParams, "prune": PruneParams,
            "benchmark": BenchmarkParams, "summarize": SummarizeParams, "plot": PlotParams}


def _cross_section_problems(parsed: Mapping[str, Any]) -> list[str]:
    """Messages for values that another section does not allow, where both were parsed."""
    problems = []
    train, prune = parsed.get("train"), parsed.get("prune")
    if train and prune and prune.layer_sensitivity not in (None, *train.recipes):
        problems.append(f"prune.layer_sensitivity: got {prune.layer_sensitivity!r}; allowed: "
                        f"null or one of train.recipes ({', '.join(train.recipes)})")
    for key in ("k_list", "methods") if prune and parsed.get("benchmark") else ():
        timed, pruned = getattr(parsed["benchmark"], key), getattr(prune, key)
        if untimed := [value for value in timed if value not in pruned]:
            problems.append(f"benchmark.{key}: got {list(timed)}; {untimed} not in prune.{key}; "
                            f"allowed: values of prune.{key} {list(pruned)}")
    return problems


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """A ' (did you mean X?)' hint naming the closest candidate, or '' if none is close."""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section_problems(name: str, raw: Any, error: pydantic.ValidationError) -> list[str]:
    """Messages for a section's pydantic errors: one per bad key, and per bad recipe field."""
    fields, problems, reported = SECTIONS[name].model_fields, [], set()
    recipe_fields = ", ".join(_RECIPE_FIELDS)
    for problem in error.errors():
        loc, kind = problem["loc"], problem["type"]
        if not loc and kind == "value_error":  # A rule across the section's keys.
            problems.append(f"{name}.{problem['ctx']['error']}")
            continue
        if not loc:
            return [f"{name}: expected a mapping of keys, got {raw!r}"]
        key, path = loc[0], f"{name}.{loc[0]}"
        recipe = f"{path}.{loc[1]}" if len(loc) > 1 and isinstance(raw[key], Mapping) else None
        if recipe and loc[2:] == ("[key]",):
            problems.append(f"{recipe}: not a valid recipe name; allowed: letters, digits and _")
        elif recipe and len(loc) == 2 and kind == "value_error":  # A rule across fields.
            problems.append(f"{recipe}.{problem['ctx']['error']}")
        elif recipe and len(loc) == 2:
            problems.append(f"{recipe}: expected a mapping of fields ({recipe_fields}), "
                            f"got {problem['input']!r}")
        elif recipe and kind == "extra_forbidden":
            problems.append(f"{recipe}.{loc[2]}: unknown field; allowed: {recipe_fields}")
        elif recipe:
            problems.append(f"{recipe}.{loc[2]}: got {problem['input']!r}; allowed: "
                            f"{RecipeParams.model_fields[loc[2]].description}")
        elif kind == "missing":
            problems.append(f"{path}: missing; add it to {PARAMS_FILE}")
        elif kind == "extra_forbidden":
            problems.append(f"{path}: unknown key{_did_you_mean(str(key), list(fields))}; "
                            f"allowed keys: {', '.join(fields)}")
        elif key not in reported:  # The first problem of a key says what is allowed.
            reported.add(key)
            detail = (f"; {raw[key][loc[1]]!r} is not" if len(loc) > 1 else
                      f"; {problem['ctx']['error']}" if kind == "value_error" else "")
            problems.append(f"{path}: got {raw[key]!r}; allowed: {fields[key].description}"
                            + detail)
    return problems


def parse_params(document: Any, sections: Sequence[str]) -> dict[str, Any]:
    """Validates some sections of a parsed document; ParamsError lists every problem."""
    if not isinstance(document, Mapping):
        raise ParamsError(f"{PARAMS_FILE} must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), got {type(document).__name__}")
    problems = [f"{section}: unknown section{_did_you_mean(str(section), list(SECTIONS))}; "
                f"allowed sections: {', '.join(SECTIONS)}"
                for section in document if section not in SECTIONS]
    parsed = {}
    for section in sections:
        if section not in document:
            problems.append(f"{section}: section missing from {PARAMS_FILE}")
            continue
        try:
            parsed[section] = SECTIONS[section].model_validate(document[section])
        except pydantic.ValidationError as error:
            problems.extend(_section_problems(section, document[section], error))
    problems.extend(_cross_section_problems(parsed))
    if problems:
        raise ParamsError(f"invalid {PARAMS_FILE}:\n  " + "\n  ".join(problems))
    return parsed


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # noqa: D102
        keys = [self.construct_object(key_node, deep=deep) for key_node, _ in node.value]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", node.value[index][0].start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats without a dot, such as the 1e-07 that `dvc exp run -S ...=1e-7` writes (DVC
# writes YAML 1.2), which PyYAML's YAML 1.1 rules would read as the string '1e-07'.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_params(sections: Sequence[str], path: str | pathlib.Path = PARAMS_FILE
                ) -> dict[str, Any]:
    """Reads ``path`` and validates the sections a stage reads; ParamsError lists problems."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run the stage from the repository root")
    try:  # Safe, and refuses repeated keys.
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML; fix the syntax: {error}") from None
    return parse_params(document, sections)
