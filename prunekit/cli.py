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
    """Runs a stage's ``main``, turning bad-input errors and Ctrl-C into short messages.

    A stage that succeeds logs its peak resident memory. Outputs are written atomically, so a
    stage stopped here leaves the outputs on disk as they were; under DVC, which removes a
    stage's outputs before running it, the message says how to restore the last good ones.

    Args:
        main: The stage's entry point.

    Raises:
        SystemExit: With a one-line message, on one of :data:`INPUT_ERRORS` or Ctrl-C.
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
    """Reads the recipe (and seed) a stage instance works on from its command line.

    Args:
        recipes: The recipe names of ``train.recipes``.
        seeds: The seeds of ``train.seeds``, or None for a stage that takes no seed.

    Returns:
        The recipe and the seed (None without ``seeds``).

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
    """Checks that a params value naming a recipe (or null) names one of ``train.recipes``.

    Raises:
        errors.InputError: If it names another.
    """
    if name is not None and name not in recipes:
        raise errors.InputError(f"{key}: got {name!r}; allowed: null or one of train.recipes "
                                f"({', '.join(recipes)})")
