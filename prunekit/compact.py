"""Compact networks: pruned MLPs with dead neurons removed, stored in their smallest encoding.

With no biases, a hidden neuron whose incoming row is all zero always outputs ReLU(0) = 0, and
one whose outgoing column is all zero is read by nobody: either way, deleting its row in one
matrix and its column in the next changes no logit. Removal repeats until nothing more dies,
since a deletion can starve a neighbour. Input pixels that no kept weight reads are dropped
too; the ten logits are always kept.

Each remaining matrix is stored as whichever encoding is smallest: ``dense``; ``csr`` (row
pointers and the narrowest integer type that holds the column indices); or ``bitmask`` (one
bit per position plus the non-zero values), which wins at moderate sparsity.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from prunekit import errors, files, model

FORMAT = "prunekit.compact/1"


class ArtifactError(errors.InputError):
    """Raised when a compact artifact is missing, unreadable or inconsistent."""


@dataclasses.dataclass(frozen=True)
class CompactNetwork:
    """A pruned MLP reduced to the neurons that matter.

    Attributes:
        layer_sizes: Widths of the original network, input and logits included.
        kept_units: Per layer boundary, the sorted int64 indices of the neurons kept; the first
            entry indexes input pixels, the last one is every logit.
        weights: Compacted (kept_out, kept_in) float32 matrices, first layer first.
    """

    layer_sizes: tuple[int, ...]
    kept_units: tuple[torch.Tensor, ...]
    weights: tuple[torch.Tensor, ...]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Runs the compact network on flattened images.

        Args:
            images: Flattened images, shape (batch, original input size ``layer_sizes[0]``).

        Returns:
            The logits, shape (batch, 10).
        """
        kept_pixels = images.index_select(1, self.kept_units[0])  # (batch, kept inputs)
        return model.forward_weights(self.weights, kept_pixels)

    def num_weights(self) -> int:
        """Counts the weights the compacted matrices hold, zeros included.

        Returns:
            The total number of entries of :attr:`weights`.
        """
        return sum(weight.numel() for weight in self.weights)

    def num_nonzero(self) -> int:
        """Counts the non-zero weights that remain.

        Returns:
            The number of non-zero entries of :attr:`weights`.
        """
        return sum(int(torch.count_nonzero(weight)) for weight in self.weights)


def live_units(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Finds, per layer boundary, which neurons can influence the logits.

    Args:
        weights: Masked (out, in) matrices, first layer first.

    Returns:
        One bool tensor per layer boundary (input, each hidden layer, logits), True where the
        neuron is kept.
    """
    nonzero = [weight != 0 for weight in weights]
    alive = [torch.ones(weights[0].shape[1], dtype=torch.bool),
             *[torch.ones(weight.shape[0], dtype=torch.bool) for weight in weights]]
    changed = True
    while changed:
        changed = False
        for index, links in enumerate(nonzero):
            # links: (out, in); only links between living neurons count.
            live_links = links & alive[index + 1][:, None] & alive[index][None, :]
            fed = live_links.any(dim=1)  # Output neurons with at least one live input.
            read = live_links.any(dim=0)  # Input neurons with at least one live reader.
            is_logit_layer = index == len(nonzero) - 1
            new_out = alive[index + 1] if is_logit_layer else alive[index + 1] & fed
            new_in = alive[index] & read
            if not (torch.equal(new_out, alive[index + 1]) and torch.equal(new_in, alive[index])):
                alive[index + 1], alive[index] = new_out, new_in
                changed = True
    return alive


def compact(weights: Sequence[torch.Tensor]) -> CompactNetwork:
    """Removes dead neurons (and unread inputs) from masked matrices without changing logits.

    Args:
        weights: Masked (out, in) matrices, first layer first.

    Returns:
        The equivalent compact network.
    """
    alive = live_units(weights)
    kept = [torch.nonzero(mask).flatten() for mask in alive]
    compacted = [weight.detach()[kept[index + 1][:, None], kept[index][None, :]].contiguous()
                 for index, weight in enumerate(weights)]
    sizes = (weights[0].shape[1], *(weight.shape[0] for weight in weights))
    return CompactNetwork(layer_sizes=tuple(sizes), kept_units=tuple(kept),
                          weights=tuple(compacted))


def _narrowest_index_dtype(upper_bound: int) -> torch.dtype:
    """Picks the smallest signed integer dtype that holds every value below ``upper_bound``.

    Args:
        upper_bound: One more than the largest value to hold.

    Returns:
        ``torch.int8``, ``torch.int16``, ``torch.int32`` or ``torch.int64``.
    """
    for dtype in (torch.int8, torch.int16, torch.int32):
        if upper_bound <= torch.iinfo(dtype).max + 1:
            return dtype
    return torch.int64


def encode_matrix(weight: torch.Tensor) -> dict[str, torch.Tensor | str]:
    """Encodes a matrix in whichever of dense, CSR or bitmask takes the fewest bytes.

    Args:
        weight: A float32 (rows, columns) matrix.

    Returns:
        A dict with ``encoding`` (``dense``, ``csr`` or ``bitmask``), ``shape`` (int64
        ``[rows, columns]``) and the tensors of that encoding: ``values``, plus ``bits`` or
        ``crow_indices`` and ``col_indices``.
    """
    rows, columns = weight.shape
    nonzero_mask = weight != 0
    values = weight[nonzero_mask]  # Row-major order, as CSR needs.
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
        bits = np.packbits(nonzero_mask.flatten().numpy())
        return {"encoding": "bitmask", "shape": shape, "values": values,
                "bits": torch.from_numpy(bits)}
    crow = torch.zeros(rows + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(nonzero_mask.sum(dim=1), dim=0)
    col = torch.nonzero(nonzero_mask)[:, 1]
    return {"encoding": "csr", "shape": shape, "values": values,
            "crow_indices": crow.to(pointer_dtype), "col_indices": col.to(column_dtype)}


def decode_matrix(encoded: dict) -> torch.Tensor:
    """Rebuilds the dense float32 matrix from :func:`encode_matrix`'s output.

    Args:
        encoded: A dict as :func:`encode_matrix` returns it, e.g. loaded from an artifact.

    Returns:
        The (rows, columns) matrix.

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


def save_compact(path: str | pathlib.Path, network: CompactNetwork, method: str,
                 percent: float) -> dict[str, int]:
    """Saves a compact network; ``torch.load(weights_only=True)`` reads it.

    Args:
        path: Destination ``.pt`` file.
        network: What to save.
        method: The pruning method that produced it.
        percent: The pruning percentage that produced it.

    Returns:
        How many matrices use each encoding.
    """
    encoded = [encode_matrix(weight) for weight in network.weights]
    index_dtype = _narrowest_index_dtype(max(network.layer_sizes))
    files.save_torch(path, {
        "format": FORMAT,
        "method": method,
        "percent": percent,
        "layer_sizes": list(network.layer_sizes),
        "kept_units": [units.to(index_dtype) for units in network.kept_units],
        "matrices": encoded,
    })
    counts: dict[str, int] = {}
    for matrix in encoded:
        counts[matrix["encoding"]] = counts.get(matrix["encoding"], 0) + 1
    return counts


_FIX = "run the prune stage again (dvc repro prune)"


def read_artifact(path: str | pathlib.Path, layer_sizes: Sequence[int], method: str,
                  percent: float) -> dict:
    """Reads a compact artifact and checks it is the expected one, without decoding it.

    Args:
        path: The ``.pt`` file.
        layer_sizes: The original widths the caller expects.
        method: The pruning method it must have been made with.
        percent: The pruning percentage it must have been made with.

    Returns:
        The saved dict, as :func:`save_compact` wrote it.

    Raises:
        ArtifactError: If the file is missing, unreadable, of another format, or made from
            another architecture, method or percentage.
    """
    saved = files.load_checkpoint(path, ArtifactError, _FIX)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a {FORMAT} artifact; {_FIX}")
    sizes = list(saved.get("layer_sizes", []))
    made_with = (saved.get("method"), saved.get("percent"))
    if sizes != list(layer_sizes):
        raise ArtifactError(f"{path} was pruned from layer sizes {sizes}, expected "
                            f"{list(layer_sizes)}; {_FIX}")
    if made_with != (method, percent):
        raise ArtifactError(f"{path} holds {made_with[0]} pruning at k={made_with[1]}, expected "
                            f"{method} at k={percent}; {_FIX}")
    if len(saved.get("matrices", ())) != len(sizes) - 1 or len(
            saved.get("kept_units", ())) != len(sizes):
        raise ArtifactError(f"{path} does not hold one matrix per layer; {_FIX}")
    return saved


def check_artifacts(paths: Mapping[tuple[str, float], pathlib.Path],
                    layer_sizes: Sequence[int]) -> None:
    """Checks every artifact a stage will need before it does any work.

    Args:
        paths: Per ``(method, percent)``, the artifact's path.
        layer_sizes: The original widths every artifact must have been pruned from.

    Raises:
        ArtifactError: For the first artifact that is missing or not the expected one.
    """
    for (method, percent), path in paths.items():
        read_artifact(path, layer_sizes, method, percent)


def load_compact(path: str | pathlib.Path, layer_sizes: Sequence[int], method: str,
                 percent: float) -> CompactNetwork:
    """Loads a compact network saved by :func:`save_compact` and checks it is the expected one.

    Args:
        path: The ``.pt`` file.
        layer_sizes: The original widths the caller expects.
        method: The pruning method it must have been made with.
        percent: The pruning percentage it must have been made with.

    Returns:
        The network.

    Raises:
        ArtifactError: If the file is missing, unreadable, inconsistent, or another network's.
    """
    saved = read_artifact(path, layer_sizes, method, percent)
    try:
        weights = tuple(decode_matrix(matrix) for matrix in saved["matrices"])
    except ArtifactError as error:
        raise ArtifactError(f"{path}: {error}; {_FIX}") from None
    kept = tuple(units.to(torch.int64) for units in saved["kept_units"])
    shapes_match = all(weight.shape == (kept[index + 1].numel(), kept[index].numel())
                       for index, weight in enumerate(weights))
    if not shapes_match:
        raise ArtifactError(f"{path}: matrix shapes disagree with the kept neurons; {_FIX}")
    return CompactNetwork(layer_sizes=tuple(layer_sizes), kept_units=kept, weights=weights)
