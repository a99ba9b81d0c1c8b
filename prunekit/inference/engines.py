"""Forward passes of a pruned MLP on onnxruntime and on MKL's sparse BLAS.

Each back end is a callable from float32 images (batch, inputs) to logits (batch, 10), built
once from the (out, in) matrices; :mod:`prunekit.inference.plans` turns them into plans, as it
does the compiled kernel of :mod:`prunekit.inference.kernel`. None leaves threads spinning for long
after a call, which would slow whatever runs next. Design and measurements:
docs/inference-notes.md and docs/benchmark.md.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch

from prunekit import compact


def _float32(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """Returns a C-contiguous float32 NumPy copy of a tensor or array."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.array(array, dtype=np.float32, order="C", copy=True)


def _images_array(images: torch.Tensor) -> np.ndarray:
    """Returns images as a float32 NumPy array on the CPU, sharing memory where it can."""
    return images.detach().cpu().to(torch.float32).numpy()


def _select_inputs(images: torch.Tensor, input_units: np.ndarray | None) -> np.ndarray:
    """Returns the columns of ``images`` the network reads (all for None) as float32 NumPy."""
    array = _images_array(images)
    return array if input_units is None else array[:, input_units]


class OrtForward:
    """A dense ReLU MLP (no biases) run by onnxruntime.

    Args:
        weights: The (out, in) matrices, first layer first.
        input_units: Indices of the input pixels the first matrix reads, or None for all.
        num_threads: onnxruntime's intra-op threads.
    """

    def __init__(self, weights: Sequence[torch.Tensor], input_units: torch.Tensor | None,
                 num_threads: int):
        import onnxruntime  # Imported on use: only the benchmark and deployment need it.

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Its pool threads spin between the nodes of a call, as in a default session, and stop
        # the moment the call returns, so they never slow whatever runs next (benchmark.md).
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            onnx_model(weights, input_units), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Runs the network; ``images`` is (batch, all inputs), the logits (batch, 10)."""
        (logits,) = self._session.run(None, {"images": _images_array(images)})
        return torch.from_numpy(logits)


def onnx_model(weights: Sequence[torch.Tensor], input_units: torch.Tensor | None) -> bytes:
    """Serialises a dense ReLU MLP without biases as an ONNX model.

    Args:
        weights: The (out, in) matrices, first layer first.
        input_units: Indices of the input pixels the first matrix reads, or None for all.

    Returns:
        The model: input ``images`` (batch, inputs), output ``logits`` (batch, 10).
    """
    import onnx  # Imported on use, like onnxruntime.
    from onnx import helper

    num_inputs = weights[0].shape[1] if input_units is None else None
    nodes, initializers = [], []
    current = "images"
    if input_units is not None:
        initializers.append(onnx.numpy_helper.from_array(
            input_units.numpy().astype(np.int64), "input_units"))
        nodes.append(helper.make_node("Gather", ["images", "input_units"], ["kept"], axis=1))
        current = "kept"
    for index, weight in enumerate(weights):
        name = f"w{index}"
        initializers.append(onnx.numpy_helper.from_array(_float32(weight.T), name))
        nodes.append(helper.make_node("MatMul", [current, name], [f"z{index}"]))
        current = f"z{index}"
        if index < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"h{index}"]))
            current = f"h{index}"
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, "pruned_mlp",
        [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT,
                                       ["batch", num_inputs])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT,
                                       ["batch", weights[-1].shape[0]])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# MKL's sparse BLAS enumerations (mkl_spblas.h).
_INDEX_BASE_ZERO = 0
_OPERATION_NON_TRANSPOSE = 10
_MATRIX_TYPE_GENERAL = 20
_LAYOUT_ROW_MAJOR = 101
_MEMORY_AGGRESSIVE = 81
_INTERFACE_LP64 = 0
_THREADING_GNU = 3


class _MatrixDescr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("mode", ctypes.c_int), ("diag", ctypes.c_int)]


_GENERAL = _MatrixDescr(_MATRIX_TYPE_GENERAL, 0, 0)


def find_mkl_runtime() -> str:
    """Locates MKL's single dynamic library, ``libmkl_rt.so.*``.

    Looks at the ``MKL_RT`` environment variable first, then in the ``lib`` folder of the
    running Python's environment, where the ``mkl`` wheel installs it; sets ``MKL_RT`` to what
    it found, which is also how the ``sparse_dot_mkl`` package finds it.

    Returns:
        The library's path.

    Raises:
        FileNotFoundError: If there is none (install the ``mkl`` package).
    """
    candidates = [os.environ.get("MKL_RT", "")]
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        candidates += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")),
                             reverse=True)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            os.environ["MKL_RT"] = candidate
            return candidate
    raise FileNotFoundError(f"no libmkl_rt.so.* in {sys.prefix}/lib and MKL_RT is unset; "
                            "install the mkl package (pip install mkl)")


def _mkl(num_threads: int) -> ctypes.CDLL:
    """Returns the loaded ``libmkl_rt`` with its thread count set to ``num_threads``."""
    library = _load_mkl()
    library.MKL_Set_Num_Threads(num_threads)
    return library


@functools.cache
def _load_mkl() -> ctypes.CDLL:
    """Loads ``libmkl_rt`` once (LP64, GNU OpenMP threading) and declares its signatures.

    MKL's default Intel OpenMP layer computes wrong products in a process that has loaded
    PyTorch's GNU OpenMP (the two runtimes' ``omp_*`` symbols clash); the GNU layer shares
    PyTorch's runtime instead.
    """
    library = ctypes.CDLL(find_mkl_runtime())
    library.MKL_Set_Interface_Layer(_INTERFACE_LP64)
    library.MKL_Set_Threading_Layer(_THREADING_GNU)
    pointer, integer, descr = ctypes.c_void_p, ctypes.c_int, _MatrixDescr
    library.mkl_sparse_s_create_csr.argtypes = [ctypes.POINTER(pointer), integer, integer,
                                                integer, pointer, pointer, pointer, pointer]
    library.mkl_sparse_set_mv_hint.argtypes = [pointer, integer, descr, integer]
    library.mkl_sparse_set_mm_hint.argtypes = [pointer, integer, descr, integer, integer,
                                               integer]
    library.mkl_sparse_set_memory_hint.argtypes = [pointer, integer]
    library.mkl_sparse_optimize.argtypes = [pointer]
    library.mkl_sparse_destroy.argtypes = [pointer]
    library.mkl_sparse_s_mv.argtypes = [integer, ctypes.c_float, pointer, descr, pointer,
                                        ctypes.c_float, pointer]
    library.mkl_sparse_s_mm.argtypes = [integer, ctypes.c_float, pointer, descr, integer,
                                        pointer, integer, integer, ctypes.c_float, pointer,
                                        integer]
    return library


class MklError(RuntimeError):
    """Raised when an MKL sparse BLAS call does not return SPARSE_STATUS_SUCCESS."""


def _check(status: int, call: str) -> None:
    """Raises :class:`MklError` for a non-zero MKL status."""
    if status != 0:
        raise MklError(f"{call} failed with sparse_status_t {status}")


class _MklMatrix:
    """One CSR matrix handed to MKL, with the arrays MKL reads kept alive beside its handle."""

    def __init__(self, library: ctypes.CDLL, weight: torch.Tensor, batch_size: int):
        self.rows, self.columns = weight.shape
        self._library = library
        self._row_pointers, self._column_indices, self._values = compact.csr_numpy(weight, np.int32)
        self.handle = ctypes.c_void_p()
        _check(library.mkl_sparse_s_create_csr(
            ctypes.byref(self.handle), _INDEX_BASE_ZERO, self.rows, self.columns,
            self._row_pointers.ctypes.data, self._row_pointers[1:].ctypes.data,
            self._column_indices.ctypes.data, self._values.ctypes.data),
            "mkl_sparse_s_create_csr")
        expected_calls = 1_000_000
        if batch_size == 1:
            _check(library.mkl_sparse_set_mv_hint(self.handle, _OPERATION_NON_TRANSPOSE,
                                                  _GENERAL, expected_calls),
                   "mkl_sparse_set_mv_hint")
        else:
            _check(library.mkl_sparse_set_mm_hint(self.handle, _OPERATION_NON_TRANSPOSE,
                                                  _GENERAL, _LAYOUT_ROW_MAJOR, batch_size,
                                                  expected_calls),
                   "mkl_sparse_set_mm_hint")
        _check(library.mkl_sparse_set_memory_hint(self.handle, _MEMORY_AGGRESSIVE),
               "mkl_sparse_set_memory_hint")
        _check(library.mkl_sparse_optimize(self.handle), "mkl_sparse_optimize")

    def multiply(self, activations: np.ndarray, out: np.ndarray) -> None:
        """Computes ``out = W @ activations`` for (in, batch) activations, out (rows, batch)."""
        batch = activations.shape[1]
        if batch == 1:
            status = self._library.mkl_sparse_s_mv(
                _OPERATION_NON_TRANSPOSE, 1.0, self.handle, _GENERAL, activations.ctypes.data,
                0.0, out.ctypes.data)
        else:
            status = self._library.mkl_sparse_s_mm(
                _OPERATION_NON_TRANSPOSE, 1.0, self.handle, _GENERAL, _LAYOUT_ROW_MAJOR,
                activations.ctypes.data, batch, batch, 0.0, out.ctypes.data, batch)
        _check(status, "mkl_sparse_s_mv" if batch == 1 else "mkl_sparse_s_mm")

    def __del__(self) -> None:
        if self.handle:
            self._library.mkl_sparse_destroy(self.handle)


class MklForward:
    """A ReLU MLP (no biases) whose every matrix is an optimised MKL CSR handle.

    MKL analyses a handle for one kind of product, so the handles for batch 1
    (``mkl_sparse_s_mv``) and for larger batches (``mkl_sparse_s_mm``, hinted with the first
    such batch size) are made on first use of each.

    Args:
        weights: The (out, in) matrices, first layer first.
        input_units: Indices of the input pixels the first matrix reads, or None for all.
        num_threads: MKL's threads.

    Raises:
        FileNotFoundError: If MKL is not installed.
    """

    def __init__(self, weights: Sequence[torch.Tensor], input_units: torch.Tensor | None,
                 num_threads: int):
        self._library = _mkl(num_threads)
        self._num_threads = num_threads
        self._weights = [weight.detach().clone() for weight in weights]
        self._input_units = None if input_units is None else input_units.numpy()
        self._handles: dict[bool, list[_MklMatrix]] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Runs the network; ``images`` is (batch, all inputs), the logits (batch, 10).

        Raises:
            MklError: If MKL rejects a matrix or a product.
        """
        batch = images.shape[0]
        matrices = self._handles.get(batch == 1)
        if matrices is None:
            matrices = [_MklMatrix(self._library, weight, batch) for weight in self._weights]
            self._handles[batch == 1] = matrices
        self._library.MKL_Set_Num_Threads(self._num_threads)
        activations = np.ascontiguousarray(_select_inputs(images, self._input_units).T)
        last = len(matrices) - 1
        for index, matrix in enumerate(matrices):
            out = np.empty((matrix.rows, batch), dtype=np.float32)
            matrix.multiply(activations, out)
            if index < last:
                np.maximum(out, 0.0, out=out)
            activations = out
        return torch.from_numpy(activations.T)
