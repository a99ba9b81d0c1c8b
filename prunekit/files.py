"""Stage outputs written atomically, and readers that name the fix for a bad input file.

A stage writes each output under a temporary name in its final folder (:class:`OutputSet`);
only when the whole stage has succeeded are they renamed into place, metrics last, so no
output is ever a partial file. Under DVC, ``dvc checkout`` restores the last good outputs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas
import torch

from prunekit import errors

_RERUN = "rerun the stage that writes it (dvc repro --force <stage>)"


class InvalidFileError(errors.InputError):
    """Raised when an input file exists but cannot be parsed."""


def _umask() -> int:
    mask = os.umask(0o022)  # Reading the mask means setting it, then back.
    os.umask(mask)
    return mask


class OutputSet:
    """Temporary stand-ins for a stage's outputs, renamed into place on :meth:`commit`."""

    def __init__(self) -> None:
        self._pending: list[tuple[pathlib.Path, pathlib.Path]] = []

    def file(self, path: str | pathlib.Path) -> pathlib.Path:
        """Returns an empty temporary file to write instead of ``path``, in its folder."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
        os.close(handle)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; outputs are not.
        self._pending.append((pathlib.Path(temporary), path))
        return pathlib.Path(temporary)

    def directory(self, path: str | pathlib.Path) -> pathlib.Path:
        """Returns an empty temporary folder that replaces the folder ``path`` as a whole."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs are not.
        self._pending.append((staging, path))
        return staging

    def commit(self) -> None:
        """Renames every temporary output to its final name, in the order they were added."""
        for temporary, final in self._pending:
            if temporary.is_dir():
                shutil.rmtree(final, ignore_errors=True)
            os.replace(temporary, final)
        self._pending.clear()

    def discard(self) -> None:
        """Deletes every temporary output that was not committed."""
        for temporary, _ in self._pending:
            if temporary.is_dir():
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                temporary.unlink(missing_ok=True)
        self._pending.clear()


@contextlib.contextmanager
def replace_together() -> Iterator[OutputSet]:
    """Yields an :class:`OutputSet`, committed if the block succeeds and discarded if not."""
    outputs = OutputSet()
    try:
        yield outputs
        outputs.commit()
    finally:
        outputs.discard()


def _finite_or_null(data: Any) -> Any:
    """Replaces inf and NaN floats, which JSON cannot hold, by None, recursively."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_null(value) for value in data]
    return data


def write_json(path: str | pathlib.Path, data: Any) -> None:
    """Writes ``data`` as indented JSON, inf and NaN as null."""
    text = json.dumps(_finite_or_null(data), indent=2, allow_nan=False)
    pathlib.Path(path).write_text(text + "\n", encoding="utf-8")


def write_csv(path: str | pathlib.Path,
              table: pandas.DataFrame | Sequence[Mapping[str, Any]]) -> None:
    """Writes a DataFrame, or rows with the first row's keys as columns, as CSV.

    Raises:
        ValueError: If the table has no rows.
    """
    frame = pandas.DataFrame(table)
    if frame.empty:
        raise ValueError(f"no rows to write to {path}")
    frame.to_csv(path, index=False, lineterminator="\n")


def save_torch(path: str | pathlib.Path, data: Any) -> None:
    """Saves with ``torch.save`` through a file object, so the bytes do not depend on the name.

    Given a path, ``torch.save`` names the zip archive inside after the file, and the temporary
    name would change the bytes (and DVC's hash) from run to run.
    """
    with open(path, "wb") as handle:
        torch.save(data, handle)


def save_figure(path: str | pathlib.Path, figure: Any, dpi: int) -> None:
    """Saves a matplotlib figure as a PNG."""
    figure.savefig(path, dpi=dpi, format="png", bbox_inches="tight")


def load_checkpoint(path: str | pathlib.Path, error: type[Exception], fix: str) -> Any:
    """Loads a ``torch.save`` file safely (``weights_only``, on the CPU).

    Args:
        path: The checkpoint.
        error: The exception type to raise, e.g. the caller's domain error.
        fix: What the user should do, e.g. ``"run the train stage again (dvc repro train)"``.

    Raises:
        error: If the file is missing or not a readable checkpoint.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise error(f"{path} not found; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as cause:  # noqa: BLE001 - torch raises many types for a bad file.
        raise error(f"{path} is not a readable PyTorch checkpoint ({cause}); {fix}") from None


def read_table(path: str | pathlib.Path, numeric: Sequence[str] = ()) -> pandas.DataFrame:
    """Reads a CSV table with a header line, requiring the ``numeric`` columns to hold numbers.

    Raises:
        FileNotFoundError: If the table does not exist.
        InvalidFileError: If it has no data rows, lacks a column of ``numeric`` or holds a
            value there that is not a number.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the stage that writes it (dvc repro)")
    try:
        frame = pandas.read_csv(path)
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError) as error:
        raise InvalidFileError(f"{path} is not a CSV table ({error}); {_RERUN}") from None
    if frame.empty:
        raise InvalidFileError(f"{path} has no rows; {_RERUN}")
    for column in numeric:
        if column not in frame:
            raise InvalidFileError(f"{path} lacks the column {column!r}; {_RERUN}")
        if not pandas.api.types.is_numeric_dtype(frame[column]):
            raise InvalidFileError(f"{path} holds a value that is not a number in column "
                                   f"{column!r}; {_RERUN}")
    return frame
