"""What every stage script shares: logging set-up and clear exits on bad input."""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

import yaml

from prunekit import errors, provenance

# Errors that mean "bad input": reported as one clear message, without a traceback.
INPUT_ERRORS = (errors.InputError, FileNotFoundError)
PIPELINE_FILE = "dvc.yaml"


def run_stage(main: Callable[[], None]) -> None:
    """Runs a stage's ``main``, logging its peak memory, with a short exit on bad input.

    Raises:
        SystemExit: On one of :data:`INPUT_ERRORS` or Ctrl-C, with a one-line message and how
            to get the last good outputs back.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
        logging.getLogger("stage").info("peak resident memory %.0f MiB",
                                        provenance.peak_memory_mib())
    except INPUT_ERRORS as error:
        sys.exit(f"error: {error}{_restore_hint()}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted{_restore_hint()}")


def _restore_hint() -> str:
    """Tells how to get the last good outputs back, when DVC runs the stage (``DVC_STAGE``)."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return "\nthe outputs on disk are those of the last run that finished"
    in_git, in_cache = stage_outputs(stage)
    commands = ([f"'git checkout HEAD -- {' '.join(in_git)}' (tracked by git)"] if in_git else [])
    if in_cache or not in_git:
        commands.append(f"'dvc checkout {stage}' (from the DVC cache)")
    return (f"\nDVC removed the outputs of stage '{stage}' before running it; to restore the "
            f"last good ones, run {' and '.join(commands)}")


def stage_outputs(stage: str, pipeline: str | pathlib.Path = PIPELINE_FILE
                  ) -> tuple[list[str], list[str]]:
    """Splits a stage's outputs, as dvc.yaml names them, into git-tracked and DVC-cached ones.

    ``stage`` may be a generated instance (``train@adam-0``); an unreadable dvc.yaml gives
    two empty lists. Outputs with ``cache: false`` are left to git.
    """
    try:
        stages = yaml.safe_load(pathlib.Path(pipeline).read_text(encoding="utf-8"))["stages"]
        definition = stages[stage.partition("@")[0]]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return [], []
    definition = definition.get("do", definition)  # foreach stages nest their definition.
    in_git, in_cache = [], []
    for kind in ("outs", "metrics", "plots"):
        for entry in definition.get(kind, []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            (in_git if (options or {}).get("cache") is False else in_cache).append(path)
    return in_git, in_cache


def network_arguments(recipes: Sequence[str], seeds: Sequence[int] | None = None
                      ) -> tuple[str, int | None]:
    """Reads a stage instance's recipe (and seed, unless ``seeds`` is None) from its command line.

    Raises:
        errors.InputError: If the arguments are missing or not in params.yaml.
    """
    parser = argparse.ArgumentParser(description="One instance of a per-network stage.")
    parser.add_argument("recipe", help="a recipe name of train.recipes")
    if seeds is not None:
        parser.add_argument("seed", type=int, help="a seed of train.seeds")
    arguments = parser.parse_args()
    if arguments.recipe not in recipes:
        raise errors.InputError(f"recipe {arguments.recipe!r} is not in train.recipes "
                                f"({', '.join(recipes)}); run the stages through dvc repro")
    if seeds is not None and arguments.seed not in seeds:
        raise errors.InputError(f"seed {arguments.seed} is not in train.seeds "
                                f"({', '.join(map(str, seeds))}); run the stages through dvc repro")
    return arguments.recipe, arguments.seed if seeds is not None else None
