"""Compact networks: pruned MLPs with the neurons that cannot affect the logits removed.

With no biases, a hidden neuron whose incoming row is all zero always outputs ReLU(0) = 0, and
one whose outgoing column is all zero is read by nobody: deleting its row in one matrix and its
column in the next changes no logit. Removal repeats until nothing more dies, since a deletion
can starve a neighbour. Input pixels that no kept weight reads go too; the logits always stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from prunekit import model


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

    def input_units(self) -> torch.Tensor | None:
        """Returns the input pixels the network reads, or None when it reads them all."""
        kept = self.kept_units[0]
        return None if kept.numel() == self.layer_sizes[0] else kept

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Maps flattened images (batch, ``layer_sizes[0]``) to logits (batch, 10)."""
        units = self.input_units()
        pixels = images if units is None else images.index_select(1, units)  # (batch, kept)
        return model.forward_weights(self.weights, pixels)

    def num_weights(self) -> int:
        """Counts the entries of the compacted matrices, zeros included."""
        return sum(weight.numel() for weight in self.weights)

    def num_nonzero(self) -> int:
        """Counts the non-zero weights that remain."""
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
    """Removes dead neurons (and unread inputs) from masked (out, in) matrices, logits unchanged."""
    alive = live_units(weights)
    kept = [torch.nonzero(mask).flatten() for mask in alive]
    compacted = [weight.detach()[kept[index + 1][:, None], kept[index][None, :]].contiguous()
                 for index, weight in enumerate(weights)]
    sizes = (weights[0].shape[1], *(weight.shape[0] for weight in weights))
    return CompactNetwork(layer_sizes=tuple(sizes), kept_units=tuple(kept),
                          weights=tuple(compacted))


def csr_arrays(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Splits a 2-D matrix into CSR arrays: int64 row pointers, int64 columns, values.

    Values are the non-zeros in row-major order. Every CSR form in the project (artifacts,
    ``torch.sparse``, MKL and the compiled kernel) is built from these arrays.

    Raises:
        ValueError: If ``weight`` is not 2-D.
    """
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(weight.shape)}")
    kept = weight.detach() != 0
    row_pointers = torch.zeros(weight.shape[0] + 1, dtype=torch.int64)
    row_pointers[1:] = torch.cumsum(kept.sum(dim=1), dim=0)
    columns = torch.nonzero(kept)[:, 1]  # Row-major order.
    return row_pointers, columns, weight.detach()[kept].contiguous()


def csr_numpy(weight: torch.Tensor, index_dtype: type[np.integer]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns :func:`csr_arrays` as new NumPy arrays for compiled code to read.

    Row pointers are int32 and values float32, as MKL and the kernels take them; columns are of
    ``index_dtype`` (MKL reads int32, the one-image kernel 16-bit indices, and the batch kernel
    turns 32-bit columns into row offsets).
    """
    row_pointers, columns, values = csr_arrays(weight)
    return (row_pointers.numpy().astype(np.int32), columns.numpy().astype(index_dtype),
            values.numpy().astype(np.float32))
