"""Stage outputs written all-or-nothing, and readers that name the fix for a bad file.

A stage collects its outputs in an :class:`OutputSet`: each file (or folder) is first written
under a temporary name in its final folder, and only when the whole stage has succeeded are they
all renamed into place, in the order they were added (metrics last, by convention). A stage that
fails or is interrupted leaves the outputs of the last good run untouched and no partial file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas
import torch

from prunekit import errors


class InvalidFileError(errors.InputError):
    """Raised when an input file exists but cannot be parsed."""


class OutputSet:
    """Temporary stand-ins for a stage's outputs, moved into place together on success."""

    def __init__(self) -> None:
        """Starts with no outputs."""
        self._pending: list[tuple[pathlib.Path, pathlib.Path]] = []

    def file(self, path: str | pathlib.Path) -> pathlib.Path:
        """Returns a temporary path to write instead of ``path`` (its folder is created).

        Args:
            path: The output file's final path.

        Returns:
            An empty file in the same folder, moved to ``path`` by :meth:`commit`.
        """
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
        os.close(handle)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; outputs are not.
        self._pending.append((pathlib.Path(temporary), path))
        return pathlib.Path(temporary)

    def directory(self, path: str | pathlib.Path) -> pathlib.Path:
        """Returns an empty temporary folder to fill instead of the folder ``path``.

        The folder will hold exactly what is written there: files of an earlier run go.

        Args:
            path: The output folder's final path.

        Returns:
            A new folder beside ``path``, which replaces it on :meth:`commit`.
        """
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs are not.
        self._pending.append((staging, path))
        return staging

    def commit(self) -> None:
        """Moves every temporary output into place, in the order they were added.

        Ctrl-C is held back until all renames are done, so it cannot leave a mix of new and
        old outputs; it takes effect right after.
        """
        with _sigint_deferred():
            self._move_into_place()

    def _move_into_place(self) -> None:
        """Renames every temporary output to its final name; folders replace folders."""
        for temporary, final in self._pending:
            if temporary.is_dir():
                retired = final.with_name(f".{final.name}.old")
                shutil.rmtree(retired, ignore_errors=True)
                if final.exists():
                    os.replace(final, retired)
                os.replace(temporary, final)
                shutil.rmtree(retired, ignore_errors=True)
            else:
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
def _sigint_deferred() -> Iterator[None]:
    """Holds back SIGINT (Ctrl-C) for the block, then delivers it to the previous handler.

    The handler is swapped rather than the signal masked: a mask covers only the calling
    thread, and the process's other threads (PyTorch's workers) could still take the signal.
    Python runs signal handlers in the main thread, so elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)  # Python's default raises KeyboardInterrupt here.
        elif received and previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def _umask() -> int:
    """Reads the process's file-creation mask (reading it means setting it, then back).

    Returns:
        The mask, e.g. ``0o022``.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replace_together() -> Iterator[OutputSet]:
    """Yields an :class:`OutputSet` that is committed if the block succeeds, else discarded.

    Yields:
        The set, still empty, through which the block writes its outputs.
    """
    outputs = OutputSet()
    try:
        yield outputs
        outputs.commit()
    finally:
        outputs.discard()


def _finite_or_null(data: Any) -> Any:
    """Replaces infinite and NaN floats, which JSON cannot hold, by None (null), recursively.

    Args:
        data: JSON-like data: dicts, lists, tuples and scalars.

    Returns:
        The same structure with such floats replaced; tuples become lists.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_null(value) for value in data]
    return data


def write_json(path: str | pathlib.Path, data: Any) -> None:
    """Writes ``data`` as indented JSON (to a path from :class:`OutputSet`), inf/NaN as null.

    Args:
        path: The file to write, normally from :meth:`OutputSet.file`.
        data: JSON-serialisable data.
    """
    text = json.dumps(_finite_or_null(data), indent=2, allow_nan=False)
    pathlib.Path(path).write_text(text + "\n", encoding="utf-8")


def write_csv(path: str | pathlib.Path,
              table: pandas.DataFrame | Sequence[Mapping[str, Any]]) -> None:
    """Writes a table (a DataFrame, or rows of equal keys) as CSV with a header line.

    Args:
        path: The file to write, normally from :meth:`OutputSet.file`.
        table: The table; for rows, the first row's keys give the columns, in order.

    Raises:
        ValueError: If the table has no rows.
    """
    frame = pandas.DataFrame(table)
    if frame.empty:
        raise ValueError(f"no rows to write to {path}")
    frame.to_csv(path, index=False, lineterminator="\n")


def save_torch(path: str | pathlib.Path, data: Any) -> None:
    """Saves tensors (or containers of tensors) with ``torch.save``, byte-reproducibly.

    Given a path, ``torch.save`` names the zip archive inside after the file, so the temporary
    name would change the bytes (and DVC's hash) from run to run; a file object does not.

    Args:
        path: The file to write, normally from :meth:`OutputSet.file`.
        data: Tensors, or dicts, lists and scalars holding them.
    """
    with open(path, "wb") as handle:
        torch.save(data, handle)


def save_figure(path: str | pathlib.Path, figure: Any, dpi: int) -> None:
    """Saves a matplotlib figure as a PNG.

    Args:
        path: The file to write, normally from :meth:`OutputSet.file`.
        figure: The ``matplotlib.figure.Figure`` to save.
        dpi: Resolution in dots per inch.
    """
    figure.savefig(path, dpi=dpi, format="png", bbox_inches="tight")


def load_checkpoint(path: str | pathlib.Path, error: type[Exception], fix: str) -> Any:
    """Loads a ``torch.save`` file safely (``weights_only``), naming the fix when it cannot.

    Args:
        path: The checkpoint.
        error: The exception type to raise, e.g. the caller's domain error.
        fix: What the user should do, e.g. ``"run the train stage again (dvc repro train)"``.

    Returns:
        The loaded object, tensors on the CPU.

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


def read_json(path: str | pathlib.Path) -> Any:
    """Reads a JSON file, naming the file and the fix when it is missing or corrupt.

    Args:
        path: The JSON file.

    Returns:
        The parsed data.

    Raises:
        FileNotFoundError: If the file does not exist.
        InvalidFileError: If it is not valid JSON.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run the stage that writes it (dvc repro)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidFileError(f"{path} is not valid JSON ({error}); rerun the stage that "
                               "writes it (dvc repro --force <stage>)") from None


def read_table(path: str | pathlib.Path, numeric: Sequence[str] = ()) -> pandas.DataFrame:
    """Reads a CSV table with a header line, naming the fix when it is missing or bad.

    Args:
        path: The CSV file.
        numeric: Columns that must hold numbers only.

    Returns:
        The table.

    Raises:
        FileNotFoundError: If the table does not exist.
        InvalidFileError: If it has no data rows, lacks a column of ``numeric`` or holds a
            value there that is not a number.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the stage that writes it (dvc repro)")
    fix = "rerun the stage that writes it (dvc repro --force <stage>)"
    try:
        frame = pandas.read_csv(path)
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError) as error:
        raise InvalidFileError(f"{path} is not a CSV table ({error}); {fix}") from None
    if frame.empty:
        raise InvalidFileError(f"{path} has no rows; {fix}")
    for column in numeric:
        if column not in frame:
            raise InvalidFileError(f"{path} lacks the column {column!r}; {fix}")
        if not pandas.api.types.is_numeric_dtype(frame[column]):
            raise InvalidFileError(f"{path} holds a value that is not a number in column "
                                   f"{column!r}; {fix}")
    return frame


def csv_bool(value: Any) -> bool:
    """Reads a boolean as written (a bool) or read back from CSV (``"True"``).

    Args:
        value: A bool, or its text as read back from CSV.

    Returns:
        True for ``True`` or the text ``true`` or ``1`` (any case, spaces ignored), else False.
    """
    return value is True or str(value).strip().lower() in ("true", "1")
