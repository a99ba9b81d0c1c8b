"""Typed, validated views of ``params.yaml``: one frozen dataclass per stage section.

Every stage calls :func:`load_params` before doing any work. All problems in the sections it
reads are collected and raised together as one :class:`ParamsError`, one line per problem, each
naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from prunekit import errors, pruning, training

DATASETS = ("fashion-mnist", "mnist")
TRAIN_SET_SIZE = 60_000  # Both MNIST and Fashion-MNIST have 60,000 training images.
PARAMS_FILE = "params.yaml"


class ParamsError(errors.InputError):
    """Raised when ``params.yaml`` is missing, malformed or holds invalid values."""


class _NotAllowedError(ValueError):
    """Raised by a field rule with the description of what is allowed."""


class _NestedProblemsError(ValueError):
    """Raised by a rule for a mapping, with one ``<subkey>: <problem>`` line per problem."""


@dataclasses.dataclass(frozen=True)
class DownloadParams:
    """Which dataset to fetch and an optional local folder to take it from first."""

    dataset: str
    source_dir: str | None


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """Architecture, seeds and training recipes of the dense networks (one per recipe and seed).

    The first recipe is the reference; the first seed's networks are compacted and benchmarked.
    """

    hidden_sizes: tuple[int, ...]
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    recipes: dict[str, training.Recipe]
    limit: int | None
    device: str
    num_threads: int | None


@dataclasses.dataclass(frozen=True)
class PruneParams:
    """Pruning percentages (0-100), methods, random-control draws and single-layer pruning.

    ``layer_sensitivity`` names the recipe whose networks also get each matrix pruned alone.
    """

    k_list: tuple[float, ...]
    methods: tuple[str, ...]
    random_draws: int
    layer_sensitivity: str | None


@dataclasses.dataclass(frozen=True)
class BenchmarkParams:
    """Inference timing settings."""

    batch_sizes: tuple[int, ...]
    k_list: tuple[float, ...]
    rounds: int
    block_seconds: float
    num_threads: int


@dataclasses.dataclass(frozen=True)
class PlotParams:
    """Rendering settings of the matplotlib charts."""

    dpi: int


# Rules: each takes the raw YAML value and returns the normalised value or raises _NotAllowedError.


def _is_int(value: Any) -> bool:
    """Checks that a value is an integer, booleans excluded.

    Args:
        value: A raw YAML value.

    Returns:
        Whether ``value`` is an ``int`` but not a ``bool``.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """Checks that a value is a number, booleans excluded.

    Args:
        value: A raw YAML value.

    Returns:
        Whether ``value`` is an ``int`` or ``float`` but not a ``bool``.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    """Builds a rule accepting integers in ``[minimum, maximum]``.

    Args:
        minimum: The smallest allowed value.
        maximum: The largest allowed value, or None for no upper bound.

    Returns:
        The rule: it returns an allowed value unchanged, else raises ``_NotAllowedError``.
    """
    allowed = f"an integer >= {minimum}" if maximum is None else (
        f"an integer from {minimum} to {maximum}")

    def rule(value: Any) -> int:
        """Returns ``value`` if it is an allowed integer, else raises ``_NotAllowedError``."""
        if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
            raise _NotAllowedError(allowed)
        return value

    return rule


def _optional(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wraps ``rule`` so that ``null`` is accepted too.

    Args:
        rule: The rule for values other than ``null``.

    Returns:
        The rule: None for ``null``, else what ``rule`` returns or raises, its message
        prefixed with "null or".
    """

    def optional_rule(value: Any) -> Any:
        """Returns None for ``null``, else applies ``rule``, whose refusal then allows null."""
        if value is None:
            return None
        try:
            return rule(value)
        except _NotAllowedError as error:
            raise _NotAllowedError(f"null or {error}") from None

    return optional_rule


def _positive_number(value: Any) -> float:
    """Accepts a finite number greater than zero.

    Args:
        value: A raw YAML value.

    Returns:
        The value as a float.

    Raises:
        _NotAllowedError: If it is not a finite number > 0.
    """
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise _NotAllowedError("a finite number > 0")
    return float(value)


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    """Builds a rule accepting one of ``options``.

    Args:
        options: The allowed values.

    Returns:
        The rule: it returns an allowed value unchanged, else raises ``_NotAllowedError``.
    """

    def rule(value: Any) -> str:
        """Returns ``value`` if it is one of ``options``, else raises ``_NotAllowedError``."""
        if value not in options:
            raise _NotAllowedError("one of " + ", ".join(options))
        return value

    return rule


def _unique_list(item_rule: Callable[[Any], Any], item_allowed: str) -> Callable[[Any], tuple]:
    """Builds a rule accepting a non-empty list without duplicates, each item passing a rule.

    Args:
        item_rule: The rule every item must pass.
        item_allowed: What ``item_rule`` allows, for the error message.

    Returns:
        The rule: it returns the items as ``item_rule`` normalises them, as a tuple, else
        raises ``_NotAllowedError``.
    """
    allowed = f"a non-empty list of distinct items, each {item_allowed}"

    def rule(value: Any) -> tuple:
        """Returns the normalised items as a tuple, else raises ``_NotAllowedError``."""
        if not isinstance(value, list) or not value:
            raise _NotAllowedError(allowed)
        items = []
        for item in value:
            try:
                items.append(item_rule(item))
            except _NotAllowedError:
                raise _NotAllowedError(f"{allowed}; {item!r} is not") from None
        if len(set(items)) != len(items):
            duplicates = sorted({item for item in items if items.count(item) > 1})
            raise _NotAllowedError(f"{allowed}; duplicated: {duplicates}")
        return tuple(items)

    return rule


def _percent(value: Any) -> float | int:
    """Accepts a number from 0 to 100.

    Args:
        value: A raw YAML value.

    Returns:
        The value unchanged (an int stays an int).

    Raises:
        _NotAllowedError: If it is not a number from 0 to 100.
    """
    if not _is_number(value) or not 0 <= value <= 100:
        raise _NotAllowedError("a number from 0 to 100")
    return value


def _hidden_sizes(value: Any) -> tuple[int, ...]:
    """Accepts a non-empty list of positive integers (at least one layer to prune).

    Args:
        value: A raw YAML value.

    Returns:
        The sizes as a tuple.

    Raises:
        _NotAllowedError: If it is not a non-empty list of positive integers.
    """
    if (not isinstance(value, list) or not value
            or not all(_is_int(size) and size > 0 for size in value)):
        raise _NotAllowedError("a non-empty list of positive integers, e.g. "
                               "[1000, 1000, 500, 200]")
    return tuple(value)


def _device(value: Any) -> str:
    """Accepts auto, cpu, cuda or cuda:N, refusing CUDA where none is available.

    Args:
        value: A raw YAML value.

    Returns:
        The value unchanged.

    Raises:
        _NotAllowedError: If it is none of these, or names a CUDA device this machine lacks.
    """
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise _NotAllowedError("auto, cpu, cuda or cuda:N")
    if value.startswith("cuda"):
        import torch  # Imported here: validating the other sections needs no torch.

        if not torch.cuda.is_available():
            raise _NotAllowedError("auto or cpu: this machine has no CUDA device")
        index = int(value.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise _NotAllowedError(f"a CUDA index below {torch.cuda.device_count()}")
    return value


def _recipe_name(value: Any) -> str:
    """Accepts a recipe name: letters, digits and _."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]+", value):
        raise _NotAllowedError("a recipe name of train.recipes")
    return value


def _recipes(value: Any) -> dict[str, training.Recipe]:
    """Accepts a non-empty mapping of recipe names (letters, digits, _) to recipe fields.

    Raises:
        _NotAllowedError: If it is not such a mapping.
        _NestedProblemsError: Naming each bad name, unknown field and bad value.
    """
    if not isinstance(value, Mapping) or not value:
        raise _NotAllowedError("a non-empty mapping of recipe names to their fields, e.g. "
                               "{adam: {optimizer: adam, lr: 0.001}}")
    problems = [f"{name}: not a valid recipe name; allowed: letters, digits and _"
                for name in value if not isinstance(name, str)
                or not re.fullmatch(r"[A-Za-z0-9_]+", name)]
    try:
        recipes = training.parse_recipes(value)
    except ValueError as error:
        problems.extend(str(error).splitlines())
    if problems:
        raise _NestedProblemsError("\n".join(problems))
    return recipes


def _optional_string(value: Any) -> str | None:
    """Accepts null or a non-empty string.

    Args:
        value: A raw YAML value.

    Returns:
        The value unchanged.

    Raises:
        _NotAllowedError: If it is neither null nor a non-empty string.
    """
    if value is not None and (not isinstance(value, str) or not value):
        raise _NotAllowedError("null or a folder path")
    return value


_RULES: dict[str, tuple[type, dict[str, Callable[[Any], Any]]]] = {
    "download": (DownloadParams, {
        "dataset": _choice(DATASETS),
        "source_dir": _optional_string,
    }),
    "train": (TrainParams, {
        "hidden_sizes": _hidden_sizes,
        "epochs": _integer(1),
        "batch_size": _integer(1),
        "seeds": _unique_list(_integer(0), "an integer >= 0"),
        "recipes": _recipes,
        "limit": _optional(_integer(1, TRAIN_SET_SIZE)),
        "device": _device,
        "num_threads": _optional(_integer(1)),
    }),
    "prune": (PruneParams, {
        "k_list": _unique_list(_percent, "a number from 0 to 100"),
        "methods": _unique_list(_choice(pruning.METHODS), "one of " + ", ".join(pruning.METHODS)),
        "random_draws": _integer(0),
        "layer_sensitivity": _optional(_recipe_name),
    }),
    "benchmark": (BenchmarkParams, {
        "batch_sizes": _unique_list(_integer(1), "an integer >= 1"),
        "k_list": _unique_list(_percent, "a number from 0 to 100"),
        "rounds": _integer(1),
        "block_seconds": _positive_number,
        "num_threads": _integer(1),
    }),
    "plot": (PlotParams, {
        "dpi": _integer(30, 1200),
    }),
}


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """Suggests the allowed name that a likely typo was meant to be.

    Args:
        name: The unknown name as written.
        candidates: The allowed names.

    Returns:
        A ' (did you mean X?)' hint naming the closest candidate, or an empty string if none
        is close.
    """
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section_problems(name: str, raw: Any) -> tuple[dict[str, Any], list[str]]:
    """Validates one section of the params document.

    Args:
        name: The section's name, a key of ``_RULES``.
        raw: The section as parsed from YAML.

    Returns:
        The normalised values of the keys that passed their rules, and one message per
        problem (the section not a mapping, or a key unknown, missing or not allowed).
    """
    _, rules = _RULES[name]
    if not isinstance(raw, Mapping):
        return {}, [f"{name}: expected a mapping of keys, got {raw!r}"]
    problems = []
    values = {}
    for key in raw:
        if key not in rules:
            problems.append(f"{name}.{key}: unknown key{_did_you_mean(str(key), list(rules))}; "
                            f"allowed keys: {', '.join(rules)}")
    for key, rule in rules.items():
        if key not in raw:
            problems.append(f"{name}.{key}: missing; add it to {PARAMS_FILE}")
            continue
        try:
            values[key] = rule(raw[key])
        except _NotAllowedError as allowed:
            problems.append(f"{name}.{key}: got {raw[key]!r}; allowed: {allowed}")
        except _NestedProblemsError as nested:
            problems.extend(f"{name}.{key}.{line}" for line in str(nested).splitlines())
    return values, problems


def parse_params(document: Any, sections: Sequence[str]) -> dict[str, Any]:
    """Validates the given sections of an already parsed params document.

    Args:
        document: The parsed YAML document (expected to be a mapping of sections).
        sections: Names of the sections the caller reads, e.g. ``["train"]``.

    Returns:
        A mapping from section name to its frozen params dataclass.

    Raises:
        ParamsError: Listing every problem found, one per line.
    """
    if not isinstance(document, Mapping):
        raise ParamsError(f"{PARAMS_FILE} must be a mapping of sections "
                          f"({', '.join(_RULES)}), got {type(document).__name__}")
    problems = [f"{section}: unknown section{_did_you_mean(str(section), list(_RULES))}; "
                f"allowed sections: {', '.join(_RULES)}"
                for section in document if section not in _RULES]
    parsed = {}
    for section in sections:
        if section not in document:
            problems.append(f"{section}: section missing from {PARAMS_FILE}")
            continue
        values, section_problems = _section_problems(section, document[section])
        problems.extend(section_problems)
        if not section_problems:
            parsed[section] = _RULES[section][0](**values)
    if problems:
        raise ParamsError(f"invalid {PARAMS_FILE}:\n  " + "\n  ".join(problems))
    return parsed


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Builds a mapping, raising on a repeated key.

        Args:
            node: The YAML mapping node.
            deep: Whether to build nested values at once, as in :class:`yaml.SafeLoader`.

        Returns:
            The mapping.

        Raises:
            yaml.constructor.ConstructorError: Naming the key and its line.
        """
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_params(sections: Sequence[str], path: str | pathlib.Path = PARAMS_FILE
                ) -> dict[str, Any]:
    """Reads ``params.yaml`` and validates the sections a stage reads.

    Args:
        sections: Names of the sections the caller reads.
        path: The params file.

    Returns:
        A mapping from section name to its frozen params dataclass.

    Raises:
        ParamsError: If the file is missing, is not valid YAML, or holds invalid values.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path} not found; run the stage from the repository root") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # Safe, and refuses repeated keys.
    except yaml.YAMLError as error:
        raise ParamsError(f"{path} is not valid YAML; fix the syntax: {error}") from None
    return parse_params(document, sections)
