"""``params.yaml`` as one frozen pydantic model per section; errors name key, value, allowed."""

from __future__ import annotations

import dataclasses
import difflib
import pathlib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pydantic
import torch
import yaml
from pydantic import AfterValidator, ConfigDict, Field

from prunekit import data, errors, pruning, training

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


def _cuda_present(device: str) -> str:
    """Returns ``device`` unless it names a CUDA device this machine lacks (ValueError)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.startswith("cuda") and int(device.partition(":")[2] or 0) >= count:
        raise ValueError(f"this machine has {count or 'no'} CUDA device{'s' * (count != 1)}")
    return device


_Percent = Annotated[int | float, Field(ge=0, le=100)]  # An int stays an int; NaN is refused.
_RecipeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
_RECIPE_FIELDS = tuple(field.name for field in dataclasses.fields(training.Recipe))
_Recipes = Annotated[dict[_RecipeName, Annotated[  # training.Recipe checks the values.
    dict[Literal[_RECIPE_FIELDS], Any], AfterValidator(lambda fields: training.Recipe(**fields))]],
    Field(min_length=1, description="a non-empty mapping of recipe names to their fields, e.g. "
          "{adam: {optimizer: adam, lr: 0.001}}")]


class _Section(pydantic.BaseModel):
    model_config = _CONFIG


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
    recipes: _Recipes  # Name to training.Recipe; the first is the reference.
    limit: Annotated[int, Field(ge=1, le=data.TRAIN_SET_SIZE)] | None = Field(
        description=f"null or an integer from 1 to {data.TRAIN_SET_SIZE}")
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$"), AfterValidator(
        _cuda_present)] = Field(description="auto, cpu, cuda or cuda:N")
    num_threads: Annotated[int, Field(ge=1)] | None = Field(description="null or an integer >= 1")


class PruneParams(_Section):
    """Pruning percentages (0-100), methods, random-control draws and single-layer pruning."""

    k_list: _distinct_list(_Percent, "a number from 0 to 100")
    methods: _distinct_list(Literal[pruning.METHODS], "one of " + ", ".join(pruning.METHODS))
    random_draws: int = Field(ge=0, description="an integer >= 0")
    layer_sensitivity: _RecipeName | None = Field(  # Its networks get each matrix pruned alone.
        description="null or a recipe name of train.recipes")


class BenchmarkParams(_Section):
    """Inference timing settings."""

    batch_sizes: _distinct_list(Annotated[int, Field(ge=1)], "an integer >= 1")
    k_list: _distinct_list(_Percent, "a number from 0 to 100")
    rounds: int = Field(ge=1, description="an integer >= 1")
    block_seconds: float = Field(gt=0, allow_inf_nan=False, description="a finite number > 0")
    num_threads: int = Field(ge=1, description="an integer >= 1")


class PlotParams(_Section):
    """Rendering settings of the matplotlib charts."""

    dpi: int = Field(ge=30, le=1200, description="an integer from 30 to 1200")


SECTIONS = {"download": DownloadParams, "train": TrainParams, "prune": PruneParams,
            "benchmark": BenchmarkParams, "plot": PlotParams}


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
        if not loc:
            return [f"{name}: expected a mapping of keys, got {raw!r}"]
        key, path = loc[0], f"{name}.{loc[0]}"
        recipe = f"{path}.{loc[1]}" if len(loc) > 1 and isinstance(raw[key], Mapping) else None
        if recipe and loc[2:] == ("[key]",):
            problems.append(f"{recipe}: not a valid recipe name; allowed: letters, digits and _")
        elif recipe and kind == "value_error":  # training.Recipe's rules, a line per field.
            problems.extend(f"{recipe}.{line}" for line in str(problem["ctx"]["error"]).split("\n"))
        elif recipe and len(loc) == 2:
            problems.append(f"{recipe}: expected a mapping of fields ({recipe_fields}), "
                            f"got {problem['input']!r}")
        elif recipe:
            problems.append(f"{recipe}.{loc[2]}: unknown field; allowed: {recipe_fields}")
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
