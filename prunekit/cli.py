"""What every stage script shares: logging set-up and clear exits on bad input."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from prunekit import errors, provenance

# Errors that mean "bad input": reported as one clear message, without a traceback.
INPUT_ERRORS = (errors.InputError, FileNotFoundError)


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
    return (f"\nDVC removed the outputs of stage '{stage}' before running it; "
            f"'dvc checkout {stage}' restores the last good ones from the DVC cache")


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


def check_recipe_name(name: str | None, recipes: Sequence[str], key: str) -> None:
    """Raises errors.InputError unless a params value naming a recipe is null or in ``recipes``."""
    if name is not None and name not in recipes:
        raise errors.InputError(f"{key}: got {name!r}; allowed: null or one of train.recipes "
                                f"({', '.join(recipes)})")
