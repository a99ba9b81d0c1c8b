"""The compiled CSR forward passes of ``kernels.c``, built on first use and cached.

The C source is compiled with the system's C compiler (``cc``, or ``$CC``) for the machine it
runs on (``-O3 -march=native``) into a shared library kept in ``$XDG_CACHE_HOME/prunekit``
(``~/.cache/prunekit``), named by a hash of the source, the flags and the CPU, and loaded with
ctypes. A machine without a compiler gets :class:`KernelUnavailableError`.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

SOURCE = pathlib.Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-pthread", "-shared", "-fPIC")
TILE = 64  # Images per tile; must match TILE in kernels.c.
# Pass flags of forward_tiles; must match kernels.c.
ACCUMULATE, END_OF_LAYER, APPLY_RELU = 1, 2, 4

class KernelUnavailableError(RuntimeError):
    """Raised when the kernels cannot be compiled (no C compiler, or it failed)."""


def _cpu_flags() -> str:
    """Returns the CPU's model and feature flags, which ``-march=native`` compiles for."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [line for line in text.splitlines()
             if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def cache_dir() -> pathlib.Path:
    """Returns the folder of compiled kernels (``$XDG_CACHE_HOME/prunekit``)."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "prunekit"


def library() -> ctypes.CDLL:
    """Compiles the kernels unless cached, loads them once and declares their signatures.

    Returns:
        The loaded library with ``forward_vector`` and ``forward_batch``.

    Raises:
        KernelUnavailableError: If there is no C compiler or compiling fails.
    """
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise KernelUnavailableError("no C compiler (cc) to build the sparse kernels; "
                                     "install one, e.g. apt-get install gcc")
    key = hashlib.sha256("\n".join((SOURCE.read_text(), compiler, *FLAGS, platform.machine(),
                                    _cpu_flags())).encode()).hexdigest()[:16]
    path = cache_dir() / f"kernels-{key}.so"
    if not path.is_file():
        _compile(compiler, path)
    return _load(path)


@functools.cache
def _load(path: pathlib.Path) -> ctypes.CDLL:
    """Loads a compiled library once and declares its functions' signatures."""
    loaded = ctypes.CDLL(str(path))
    pointer, integer = ctypes.c_void_p, ctypes.c_int64
    loaded.forward_vector.argtypes = [pointer, pointer, integer, *[pointer] * 6, integer,
                                      pointer, integer, pointer]
    loaded.forward_vector.restype = None
    loaded.forward_batch.argtypes = [pointer, integer, integer, pointer, integer,
                                     *[pointer] * 7, integer, pointer, integer, integer, pointer]
    loaded.forward_batch.restype = ctypes.c_int64
    return loaded


def _compile(compiler: str, path: pathlib.Path) -> None:
    """Compiles :data:`SOURCE` into ``path`` atomically (temporary file, then rename).

    Raises:
        KernelUnavailableError: If the compiler fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        built = pathlib.Path(folder) / path.name
        result = subprocess.run([compiler, *FLAGS, "-o", str(built), str(SOURCE)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KernelUnavailableError(f"{compiler} failed to build {SOURCE.name}:\n"
                                         f"{result.stderr[-2000:]}")
        os.replace(built, path)
