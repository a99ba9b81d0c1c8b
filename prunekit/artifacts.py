"""Networks on disk, checked when read back: dense checkpoints and compact artifacts.

A compact artifact stores each matrix in its smallest encoding: ``dense``; ``csr`` (row
pointers and column indices in the narrowest integer type that holds them); or ``bitmask``
(one bit per position plus the non-zero values), which wins at moderate sparsity.
``torch.load(weights_only=True)`` reads both kinds of file.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
import torch

from prunekit import compact, errors, files, model

FORMAT = "prunekit.compact/1"
_FIX = "run the prune stage again (dvc repro prune)"


class ArtifactError(errors.InputError):
    """Raised when a compact artifact is missing, unreadable or inconsistent."""


class CheckpointError(errors.InputError):
    """A model file is missing, unreadable or of another architecture."""


def _narrowest_index_dtype(upper_bound: int) -> torch.dtype:
    """Returns the smallest signed integer dtype that holds every value below ``upper_bound``."""
    for dtype in (torch.int8, torch.int16, torch.int32):
        if upper_bound <= torch.iinfo(dtype).max + 1:
            return dtype
    return torch.int64


def encode_matrix(weight: torch.Tensor) -> dict[str, torch.Tensor | str]:
    """Encodes a float32 matrix as whichever of dense, CSR or bitmask takes the fewest bytes.

    Returns:
        ``encoding`` (``dense``, ``csr`` or ``bitmask``), ``shape`` (int64 ``[rows,
        columns]``) and that encoding's tensors: ``values``, plus ``bits`` or
        ``crow_indices`` and ``col_indices``.
    """
    rows, columns = weight.shape
    row_pointers, column_indices, values = compact.csr_arrays(weight)
    nnz = values.numel()
    column_dtype = _narrowest_index_dtype(columns)
    pointer_dtype = _narrowest_index_dtype(nnz + 1)
    sizes = {
        "dense": weight.numel() * 4,
        "csr": nnz * (4 + column_dtype.itemsize) + (rows + 1) * pointer_dtype.itemsize,
        "bitmask": nnz * 4 + -(-weight.numel() // 8),
    }
    encoding = min(sizes, key=sizes.get)
    shape = torch.tensor([rows, columns], dtype=torch.int64)
    if encoding == "dense":
        return {"encoding": "dense", "shape": shape, "values": weight.contiguous()}
    if encoding == "bitmask":
        bits = np.packbits((weight != 0).flatten().numpy())
        return {"encoding": "bitmask", "shape": shape, "values": values,
                "bits": torch.from_numpy(bits)}
    return {"encoding": "csr", "shape": shape, "values": values,
            "crow_indices": row_pointers.to(pointer_dtype),
            "col_indices": column_indices.to(column_dtype)}


def decode_matrix(encoded: dict) -> torch.Tensor:
    """Rebuilds the dense float32 matrix from :func:`encode_matrix`'s output.

    Raises:
        ArtifactError: If the encoding is unknown or its tensors disagree with its shape.
    """
    try:
        rows, columns = (int(size) for size in encoded["shape"])
        values = encoded["values"].to(torch.float32)
        if encoded["encoding"] == "dense":
            return values.reshape(rows, columns)
        if encoded["encoding"] == "bitmask":
            bits = np.unpackbits(encoded["bits"].numpy(), count=rows * columns)
            mask = torch.from_numpy(bits.astype(bool)).reshape(rows, columns)
            matrix = torch.zeros(rows, columns)
            matrix[mask] = values
            return matrix
        if encoded["encoding"] == "csr":
            row_lengths = encoded["crow_indices"].to(torch.int64).diff()
            row_of_value = torch.repeat_interleave(torch.arange(rows), row_lengths)
            matrix = torch.zeros(rows, columns)
            matrix[row_of_value, encoded["col_indices"].to(torch.int64)] = values
            return matrix
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise ArtifactError(f"corrupt {encoded.get('encoding')!r} matrix: {error}") from None
    raise ArtifactError(f"unknown matrix encoding {encoded.get('encoding')!r}")


def save_compact(path: str | pathlib.Path, network: compact.CompactNetwork, method: str,
                 k: float) -> dict[str, int]:
    """Saves a compact network made by ``method`` at ``k`` (stored under ``percent``).

    Returns:
        How many matrices use each encoding.
    """
    encoded = [encode_matrix(weight) for weight in network.weights]
    index_dtype = _narrowest_index_dtype(max(network.layer_sizes))
    files.save_torch(path, {
        "format": FORMAT,
        "method": method,
        "percent": k,
        "layer_sizes": list(network.layer_sizes),
        "kept_units": [units.to(index_dtype) for units in network.kept_units],
        "matrices": encoded,
    })
    counts: dict[str, int] = {}
    for matrix in encoded:
        counts[matrix["encoding"]] = counts.get(matrix["encoding"], 0) + 1
    return counts


def _read_artifact(path: str | pathlib.Path) -> dict:
    """Loads an artifact file, not yet decoded, checking its format and that it is whole.

    Raises:
        ArtifactError: If the file is missing, unreadable, of another format or incomplete.
    """
    saved = files.load_checkpoint(path, ArtifactError, _FIX)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a {FORMAT} artifact; {_FIX}")
    if not {"method", "percent", "layer_sizes"} <= set(saved):
        raise ArtifactError(f"{path} does not say how it was pruned; {_FIX}")
    sizes = list(saved["layer_sizes"])
    if len(saved.get("matrices", ())) != len(sizes) - 1 or len(
            saved.get("kept_units", ())) != len(sizes):
        raise ArtifactError(f"{path} does not hold one matrix per layer; {_FIX}")
    return saved


def _decode_artifact(saved: dict, path: str | pathlib.Path) -> compact.CompactNetwork:
    """Decodes an artifact read by :func:`_read_artifact` into its compact network.

    Raises:
        ArtifactError: If a matrix is inconsistent or disagrees with the kept neurons.
    """
    try:
        weights = tuple(decode_matrix(matrix) for matrix in saved["matrices"])
    except ArtifactError as error:
        raise ArtifactError(f"{path}: {error}; {_FIX}") from None
    kept = tuple(units.to(torch.int64) for units in saved["kept_units"])
    shapes_match = all(weight.shape == (kept[index + 1].numel(), kept[index].numel())
                       for index, weight in enumerate(weights))
    if not shapes_match:
        raise ArtifactError(f"{path}: matrix shapes disagree with the kept neurons; {_FIX}")
    return compact.CompactNetwork(layer_sizes=tuple(saved["layer_sizes"]), kept_units=kept,
                                  weights=weights)


def read_compact(path: str | pathlib.Path) -> tuple[compact.CompactNetwork, str, float]:
    """Loads any network saved by :func:`save_compact`, with the method and k it records.

    Raises:
        ArtifactError: If the file is missing, unreadable or inconsistent.
    """
    saved = _read_artifact(path)
    return _decode_artifact(saved, path), saved["method"], saved["percent"]


def load_compact(path: str | pathlib.Path, layer_sizes: Sequence[int], method: str,
                 k: float) -> compact.CompactNetwork:
    """Loads a network saved by :func:`save_compact` and checks it is the expected one.

    Raises:
        ArtifactError: If the file is missing, unreadable, inconsistent, or made from another
            architecture, method or percentage.
    """
    saved = _read_artifact(path)
    sizes = list(saved["layer_sizes"])
    made_with = (saved["method"], saved["percent"])
    if sizes != list(layer_sizes):
        raise ArtifactError(f"{path} was pruned from layer sizes {sizes}, expected "
                            f"{list(layer_sizes)}; {_FIX}")
    if made_with != (method, k):
        raise ArtifactError(f"{path} holds {made_with[0]} pruning at k={made_with[1]}, expected "
                            f"{method} at k={k}; {_FIX}")
    return _decode_artifact(saved, path)


def load_weights(path: str | pathlib.Path, hidden_sizes: Sequence[int] | None = None
                 ) -> list[torch.Tensor]:
    """Loads a dense checkpoint's weight matrices, float32 on the CPU, first layer first.

    With ``hidden_sizes`` None, any well-formed chain from 784 inputs to 10 logits is accepted.

    Raises:
        CheckpointError: If the file is missing, unreadable, or not an MLP of the expected sizes.
    """
    fix = "run the train stage again (dvc repro train)"
    state = files.load_checkpoint(path, CheckpointError, fix)
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path} does not hold a state dict; {fix}")
    expected_keys = [model.weight_key(index) for index in range(len(state))]
    if sorted(state) != sorted(expected_keys):
        raise CheckpointError(f"{path} has keys {sorted(state)}, expected {expected_keys} "
                              f"(bias-free MLP weights only); {fix}")
    weights = [state[key] for key in expected_keys]
    if not all(isinstance(weight, torch.Tensor) and weight.is_floating_point()
               for weight in weights):
        raise CheckpointError(f"{path} holds entries that are not floating-point tensors; {fix}")
    shapes = [tuple(weight.shape) for weight in weights]
    matrices = all(weight.ndim == 2 for weight in weights)
    chained = matrices and all(later.shape[1] == earlier.shape[0]
                               for earlier, later in zip(weights[:-1], weights[1:], strict=True))
    if not chained or shapes[0][1] != model.INPUT_SIZE or shapes[-1][0] != model.NUM_CLASSES:
        raise CheckpointError(f"{path} holds matrices of shapes {shapes}, which do not form an "
                              f"MLP from {model.INPUT_SIZE} inputs to {model.NUM_CLASSES} "
                              f"logits; {fix}")
    found_sizes = [shape[0] for shape in shapes[:-1]]
    if hidden_sizes is not None and found_sizes != list(hidden_sizes):
        raise CheckpointError(f"{path} has hidden sizes {found_sizes}, but train.hidden_sizes is "
                              f"{list(hidden_sizes)}; {fix}")
    return [weight.to(torch.float32) for weight in weights]
