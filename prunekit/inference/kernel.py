"""The compiled forward passes of ``kernel.c``, built on first use and cached, and their plan.

The C source is compiled with the system's C compiler (``cc``, or ``$CC``) for the machine it
runs on (``-O3 -march=native``) into a shared library kept in ``$XDG_CACHE_HOME/prunekit``
(``~/.cache/prunekit``), named by a hash of the source, the flags and the CPU, and loaded with
ctypes. A machine without a compiler gets :class:`KernelUnavailableError`.

:class:`KernelForward` packs a network for the kernel's two passes: one image at a time, each
layer's rows split between threads and each layer in the format that reads it fastest; and
batches, in tiles of 64 images with each block of a matrix's columns in CSR or, where it is
dense enough, densely. Measurements behind the constants: docs/benchmark.md.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import numpy as np
import torch

from prunekit import compact

SOURCE = pathlib.Path(__file__).with_name("kernel.c")
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-pthread", "-shared", "-fPIC")
# Constants shared with kernel.c, which must define the same values.
TILE = 64  # Images per tile of forward_batch.
ROW_BYTES = 4 * TILE  # A tile's activation row; forward_batch finds rows by offset in bytes.
ACCUMULATE, END_OF_LAYER, APPLY_RELU, DENSE_PASS = 1, 2, 4, 8  # Pass flags of forward_batch.
GROUP = 6  # Rows of a dense pass stored together (their weights interleaved by column).
FORMAT_CSR, FORMAT_CSC, FORMAT_DENSE = 0, 1, 2  # Layer formats of forward_vector.
FORMAT_NAMES = {FORMAT_CSR: "csr", FORMAT_CSC: "csc", FORMAT_DENSE: "dense"}
MAX_PARTS = 8  # Threads forward_vector splits a layer between, at most.
RUN_VECTORS = 8  # 8-float vectors of rows per run of a dense layer in forward_vector.
# forward_vector's indices are 16-bit (forward_batch's row offsets are 32-bit and reach further).
MAX_INDEX = np.iinfo(np.uint16).max
# Pixels (and images) per square block forward_batch transposes: 16 with AVX-512, 8 with AVX2.
TRANSPOSE_BLOCK = 16
CACHE_LINE_BYTES = 64

# Input columns per pass of the tiled batch kernel, at most: 256 activation rows of a 64-image
# tile (64 KiB), the fastest block measured; a matrix's columns are split into equal blocks.
BLOCK_COLUMNS = 256
# Batch kernel: blocks of matrices at least this dense are multiplied densely (every weight, an
# activation row loaded once for GROUP rows) rather than in CSR; CSR wins at density 0.5, the
# dense pass at 0.75 (docs/benchmark.md).
DENSE_PASS_MIN_DENSITY = 0.55
# One image: the first matrix is read densely (8 weights per instruction, zero pixels skipped)
# when at least this dense, else by rows (one weight and one index, nothing skipped); the
# dense format won at density 0.2 and lost at 0.11 (docs/benchmark.md).
DENSE_MIN_DENSITY = 0.15
# One image: a later matrix is read densely when at least this dense, else by columns; both
# skip the inputs ReLU zeroed. Chosen on validation images with scripts/batch1_formats.py
# (docs/benchmark.md): over the weight k90-k99 networks of every recipe, 0.04 ran 0.5 % slower
# than each network's fastest choice on average (9.6 % at worst), 0.15 10.9 % (37.7 %).
HIDDEN_DENSE_MIN_DENSITY = 0.04
# One image: fewer sparse multiply-adds than this per thread do not pay for a second thread's
# barriers, so smaller networks run on fewer threads. A dense matrix counts an eighth of its
# entries, as it multiplies 8 at a time.
PART_MIN_MULTIPLY_ADDS = 40_000


class KernelUnavailableError(RuntimeError):
    """Raised when the kernels cannot be compiled (no C compiler, or it failed)."""


# Why each library that failed to compile did, by its path: a process tries a build once.
_FAILED_BUILDS: dict[pathlib.Path, str] = {}


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
        KernelUnavailableError: If there is no C compiler or compiling fails (tried once in a
            process; a later call raises the same error without running the compiler again).
    """
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise KernelUnavailableError("no C compiler (cc) to build the sparse kernels; "
                                     "install one, e.g. apt-get install gcc")
    key = hashlib.sha256("\n".join((SOURCE.read_text(), compiler, *FLAGS, platform.machine(),
                                    _cpu_flags())).encode()).hexdigest()[:16]
    path = cache_dir() / f"kernels-{key}.so"
    if path in _FAILED_BUILDS:
        raise KernelUnavailableError(_FAILED_BUILDS[path])
    if not path.is_file():
        try:
            _compile(compiler, path)
        except KernelUnavailableError as error:
            _FAILED_BUILDS[path] = str(error)
            raise
    return _load(path)


@functools.cache
def _load(path: pathlib.Path) -> ctypes.CDLL:
    """Loads a compiled library once and declares its functions' signatures."""
    loaded = ctypes.CDLL(str(path))
    pointer, integer = ctypes.c_void_p, ctypes.c_int64
    loaded.forward_vector.argtypes = [pointer, pointer, pointer]
    loaded.forward_vector.restype = ctypes.c_int64
    loaded.forward_batch.argtypes = [pointer, integer, integer, integer, *[pointer] * 8,
                                     integer, pointer, integer, integer, pointer]
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


def _cache_aligned(array: np.ndarray) -> np.ndarray:
    """Returns a copy of a 1-D array that starts on a 64-byte cache line.

    NumPy aligns its arrays only to 16 bytes, and a 32-byte vector load from an address 16 or
    48 bytes into a line reads two lines: measured at batch 256, the kernel took 20 % longer
    on such activation buffers than on aligned ones (docs/benchmark.md).
    """
    line_items = CACHE_LINE_BYTES // array.itemsize
    buffer = np.empty(array.size + line_items, dtype=array.dtype)
    start = (-buffer.ctypes.data % CACHE_LINE_BYTES) // array.itemsize
    aligned = buffer[start:start + array.size]
    aligned[:] = array
    return aligned


def _round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``value``."""
    return -(-value // multiple) * multiple


def _dense_block(block: torch.Tensor) -> np.ndarray:
    """A dense pass's weights: rows padded to a multiple of GROUP, each group (columns, GROUP)."""
    rows, columns = block.shape
    padded = torch.zeros(_round_up(rows, GROUP), columns)
    padded[:rows] = block
    return padded.reshape(-1, GROUP, columns).transpose(1, 2).numpy().astype(np.float32).ravel()


def _by_pixel(weights: Sequence[torch.Tensor], input_units: torch.Tensor | None
              ) -> list[torch.Tensor]:
    """The matrices with the first one's columns at the pixels they read (zeros between).

    ``forward_batch`` transposes the images' leading pixels whole, so its first matrix is
    indexed by pixel rather than by the network's inputs. A dense pass over a first-layer
    block multiplies those zero columns too.
    """
    if input_units is None:
        return list(weights)
    first = torch.zeros(weights[0].shape[0], int(input_units.max()) + 1)
    first[:, input_units] = weights[0]
    return [first, *weights[1:]]


def _pack_passes(weights: Sequence[torch.Tensor], block_columns: int, keep_zeros: bool
                 ) -> tuple[np.ndarray, ...]:
    """Packs ``forward_batch``'s passes, one per block of a matrix's columns.

    A block at least :data:`DENSE_PASS_MIN_DENSITY` dense (every block with ``keep_zeros``) is
    a dense pass: its pointers are its first column and its number of columns, its values
    :func:`_dense_block`. Any other is in CSR, its rows in order of their non-zeros, most first
    (stable), so that the length of the kernel's loop over a row changes slowly from one row
    to the next; the rows' own indices follow its row pointers. A non-zero's column is stored
    as the offset of its activation row in bytes (column × :data:`ROW_BYTES`), so that the
    kernel adds it to an address without a shift.

    Args:
        weights: The (out, in) matrices, first layer first.
        block_columns: Input columns per pass, at most.
        keep_zeros: Multiply every weight, zeros too, as a dense engine does.

    Returns:
        The passes' concatenated pointers (int32), activation-row offsets (uint32, of the
        matrix's own columns) and values (float32); then per pass its rows, where its
        pointers, its offsets and its values start, and its flags (int64).
    """
    pointers, offsets, values, rows, flags = [], [], [], [], []
    for index, weight in enumerate(weights):
        # As few blocks as hold block_columns each, of equal width, so that no pass is short.
        count = -(-max(weight.shape[1], 1) // block_columns)
        bounds = [round(number * weight.shape[1] / count) for number in range(count + 1)]
        for number, (start, stop) in enumerate(itertools.pairwise(bounds)):
            block = weight[:, start:stop]
            row_nonzeros = (block != 0).sum(dim=1)
            flag = ACCUMULATE if number else 0
            if keep_zeros or int(row_nonzeros.sum()) >= DENSE_PASS_MIN_DENSITY * block.numel():
                flag |= DENSE_PASS
                pointers.append(np.array([start, block.shape[1]], dtype=np.int32))
                offsets.append(np.zeros(0, dtype=np.uint32))
                values.append(_dense_block(block))
            else:
                order = torch.argsort(row_nonzeros, descending=True, stable=True)
                row_pointers, columns, block_values = compact.csr_numpy(block[order], np.uint32)
                pointers.append(np.concatenate([row_pointers, order.numpy().astype(np.int32)]))
                offsets.append((columns + np.uint32(start)) * np.uint32(ROW_BYTES))
                values.append(block_values)
            rows.append(weight.shape[0])
            if number == count - 1:
                flag |= END_OF_LAYER | (APPLY_RELU if index < len(weights) - 1 else 0)
            flags.append(flag)
    # Each pass's arrays start where the passes before it end.
    starts = [np.cumsum([0, *map(len, arrays[:-1])]) for arrays in (pointers, offsets, values)]
    return (np.concatenate(pointers), np.concatenate(offsets), np.concatenate(values),
            *(np.array(column, dtype=np.int64) for column in (rows, *starts, flags)))


class _VectorLayer(ctypes.Structure):
    """``struct vector_layer`` of kernel.c."""

    _fields_ = [("format", ctypes.c_int64), ("relu", ctypes.c_int64),
                ("inputs", ctypes.c_int64), ("rows", ctypes.c_int64),
                ("row_starts", ctypes.c_int64 * (MAX_PARTS + 1)),
                ("pointers", ctypes.c_void_p * MAX_PARTS),
                ("indices", ctypes.c_void_p * MAX_PARTS),
                ("values", ctypes.c_void_p * MAX_PARTS)]


class _VectorNetwork(ctypes.Structure):
    """``struct vector_network`` of kernel.c."""

    _fields_ = [("layers", ctypes.c_int64), ("parts", ctypes.c_int64),
                ("inputs", ctypes.c_int64), ("width", ctypes.c_int64),
                ("input_units", ctypes.c_void_p), ("layer", ctypes.c_void_p),
                ("activations", ctypes.c_void_p), ("active", ctypes.c_void_p)]


def vector_format(weight: torch.Tensor, first_layer: bool) -> int:
    """Chooses how ``forward_vector`` reads a matrix.

    Matrices dense enough are read densely; of sparse ones, the first (whose input pixels are
    zero less often than hidden units) by rows and the others by columns, which skips the
    inputs that ReLU set to zero.
    """
    min_density = DENSE_MIN_DENSITY if first_layer else HIDDEN_DENSE_MIN_DENSITY
    if int(torch.count_nonzero(weight)) >= min_density * weight.numel():
        return FORMAT_DENSE
    return FORMAT_CSR if first_layer else FORMAT_CSC


def _row_starts(weight: torch.Tensor, parts: int, multiple: int) -> list[int]:
    """Splits a matrix's rows into ``parts`` runs of about equal non-zeros.

    Every start is a multiple of ``multiple``; the list ends with the number of rows.
    """
    counts = (weight != 0).sum(dim=1).cumsum(dim=0)  # Non-zeros up to and with each row.
    total = int(counts[-1]) if len(counts) else 0
    starts = [0]
    for part in range(1, parts):
        # The row after the first one where the running count reaches the part's share.
        row = int(torch.searchsorted(counts, total * part / parts)) + 1
        starts.append(min(max(starts[-1], round(row / multiple) * multiple), weight.shape[0]))
    return [*starts, weight.shape[0]]


def _part_arrays(part: torch.Tensor, layer_format: int) -> tuple[np.ndarray, ...]:
    """Returns a part's pointers (int32), 16-bit indices and values for ``forward_vector``."""
    if layer_format == FORMAT_DENSE:
        padded = torch.zeros(_round_up(part.shape[0], 8), part.shape[1])
        padded[:part.shape[0]] = part
        runs = padded.split(8 * RUN_VECTORS)  # Each run stored (inputs, its rows).
        values = torch.cat([run.T.flatten() for run in runs])
        return (np.zeros(1, np.int32), np.zeros(1, np.uint16),
                _cache_aligned(values.numpy()))
    return compact.csr_numpy(part if layer_format == FORMAT_CSR else part.T, np.uint16)


class KernelForward:
    """A ReLU MLP (no biases) run by the compiled kernels of ``kernel.c``.

    One image runs through ``forward_vector``, every layer's rows split between the calling
    thread and pool workers (fewer threads for small networks), each layer in the format of
    :func:`vector_format`; larger batches through ``forward_batch``'s tiles of 64 images (see
    :func:`_pack_passes`), shared between threads. The pool's threads are kept between calls
    and spin 0.1 ms after one.

    Args:
        weights: The (out, in) matrices, first layer first, none of them empty.
        input_units: Indices of the input pixels the first matrix reads, or None for all.
        num_threads: Threads the kernel may use.
        block_columns: Input columns per pass of the tiled batch kernel, at most.
        dense: Multiply every weight, zeros too, as a dense engine does (one image still
            skips zero activations): the kernel's own dense baseline.

    Raises:
        KernelUnavailableError: If the kernels cannot be compiled, or a layer, or the pixels
            the first matrix reads, are wider than their 16-bit indices reach.
    """

    def __init__(self, weights: Sequence[torch.Tensor], input_units: torch.Tensor | None,
                 num_threads: int, block_columns: int = BLOCK_COLUMNS, dense: bool = False):
        self._input_units = (None if input_units is None
                             else np.ascontiguousarray(input_units.numpy(), dtype=np.int64))
        self._units_pointer = None if input_units is None else self._input_units.ctypes.data
        self._inputs = weights[0].shape[1]
        # The kernel reads pixels by index: narrower images must be refused here.
        self._min_image_width = (self._inputs if input_units is None
                                 else int(self._input_units.max(initial=-1)) + 1)
        self._width = max(self._min_image_width, *(max(weight.shape) for weight in weights))
        if self._width > MAX_INDEX:
            raise KernelUnavailableError(f"a layer or image {self._width} wide is beyond the "
                                         f"kernels' 16-bit indices (at most {MAX_INDEX})")
        self._library = library()
        weights = [weight.detach().to(torch.float32) for weight in weights]
        self._blocked = _pack_passes(_by_pixel(weights, input_units), block_columns,
                                     keep_zeros=dense)
        self._blocked_pointers = [array.ctypes.data for array in self._blocked]
        self._passes = len(self._blocked[3])
        self._outputs = weights[-1].shape[0]
        self._num_threads = num_threads
        # Rows of a tile's two activation buffers: the images' pixels are transposed in whole
        # blocks, and dense passes write whole groups of GROUP.
        self._batch_width = _round_up(
            max(self._width, _round_up(self._min_image_width, TRANSPOSE_BLOCK)), GROUP)
        self._work = _cache_aligned(np.zeros(num_threads * 2 * self._batch_width * TILE,
                                             dtype=np.float32))
        self._work_pointer = self._work.ctypes.data
        self._vector_formats = [FORMAT_DENSE if dense else vector_format(weight, index == 0)
                                for index, weight in enumerate(weights)]
        self.formats = tuple(FORMAT_NAMES[code] for code in self._vector_formats)
        self._vector = self._vector_network(weights, num_threads)
        self.one_image_threads = self._vector.parts

    def _vector_network(self, weights: Sequence[torch.Tensor], num_threads: int
                        ) -> _VectorNetwork:
        """Packs the network for ``forward_vector``; the arrays stay alive with ``self``."""
        multiply_adds = sum(weight.numel() // 8 if code == FORMAT_DENSE
                            else int(torch.count_nonzero(weight))
                            for weight, code in zip(weights, self._vector_formats, strict=True))
        parts = max(1, min(num_threads, MAX_PARTS, multiply_adds // PART_MIN_MULTIPLY_ADDS))
        self._arrays = []
        layers = (_VectorLayer * len(weights))()
        for index, (weight, layer, layer_format) in enumerate(
                zip(weights, layers, self._vector_formats, strict=True)):
            layer.format, layer.relu = layer_format, index < len(weights) - 1
            layer.rows, layer.inputs = weight.shape
            dense = layer_format == FORMAT_DENSE  # Dense rows all cost the same.
            starts = _row_starts(torch.ones_like(weight) if dense else weight, parts,
                                 8 if dense else 1)
            layer.row_starts[:parts + 1] = starts
            for part in range(parts):
                arrays = _part_arrays(weight[starts[part]:starts[part + 1]], layer_format)
                self._arrays.extend(arrays)
                layer.pointers[part], layer.indices[part], layer.values[part] = (
                    array.ctypes.data for array in arrays)
        width = _round_up(self._width, 8)  # Dense parts write whole vectors of 8 rows.
        self._activations = _cache_aligned(np.zeros(2 * width, dtype=np.float32))
        self._active = np.zeros(parts * width, dtype=np.int32)
        self._layers = layers
        network = _VectorNetwork(
            layers=len(weights), parts=parts, inputs=self._inputs, width=width,
            input_units=self._units_pointer, layer=ctypes.addressof(layers),
            activations=self._activations.ctypes.data, active=self._active.ctypes.data)
        self._vector_pointer = ctypes.addressof(network)
        return network

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Runs the network; ``images`` is (batch, all inputs), the logits (batch, 10)."""
        if (images.dtype != torch.float32 or images.device.type != "cpu"
                or not images.is_contiguous()):
            images = images.detach().to("cpu", torch.float32).contiguous()
        batch, image_width = images.shape
        if image_width < self._min_image_width:
            raise ValueError(f"images of {image_width} pixels, the network reads "
                             f"{self._min_image_width}")
        logits = torch.empty(batch, self._outputs)
        if batch == 1:
            self._library.forward_vector(self._vector_pointer, images.data_ptr(),
                                         logits.data_ptr())
        else:
            # If the kernel cannot start every thread, the tiles are shared among those that run.
            self._library.forward_batch(
                images.data_ptr(), batch, image_width, self._min_image_width,
                *self._blocked_pointers, self._passes, self._work_pointer, self._batch_width,
                self._num_threads, logits.data_ptr())
        return logits
