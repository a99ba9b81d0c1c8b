"""Pruning without retraining: rank weights or rows, then mask the first k % in that order.

Functions are pure: tensors in, new tensors out. Magnitude pruning ranks by |w| (``weight``) or
by the L2 norm of each row, a neuron's incoming weights (``unit``); ties go to the earlier
position. The random control ranks in a random order drawn from an explicit generator, so it
removes exactly as many weights or rows per matrix. The last matrix (to the logits) is never
pruned.
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence

import torch

METHODS = ("weight", "unit")


def percent_label(percent: float) -> str:
    """Names a percentage exactly for keys and file names: ``k90``, ``k97.5``."""
    return f"k{int(percent)}" if float(percent).is_integer() else f"k{float(percent)!r}"


def count_to_prune(percent: float, total: int) -> int:
    """Returns ``round(percent / 100 * total)``, halves rounded up, computed exactly.

    Raises:
        ValueError: If ``percent`` is outside [0, 100] or ``total`` is negative.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be from 0 to 100, got {percent}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    exact = fractions.Fraction(str(percent)) * total / 100
    return int(exact + fractions.Fraction(1, 2))  # int() floors a non-negative Fraction.


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")


def _inverse_permutation(order: torch.Tensor) -> torch.Tensor:
    positions = torch.empty_like(order)
    positions[order] = torch.arange(order.numel())
    return positions


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks 1-D scores from the smallest (0) up, earlier positions first among ties."""
    return _inverse_permutation(torch.argsort(scores, stable=True))


def pruning_ranks(weight: torch.Tensor, method: str) -> torch.Tensor:
    """Ranks a (out, in) matrix's weights by |w| (``weight``) or its rows by L2 norm (``unit``).

    Returns:
        The rank of each weight, flattened (``weight``), or of each row, shape (out,) (``unit``).

    Raises:
        ValueError: If the method is unknown.
    """
    _check_method(method)
    if method == "weight":
        return ranks(weight.detach().abs().flatten())
    return ranks(torch.linalg.vector_norm(weight.detach(), dim=1))


def random_ranks(weight: torch.Tensor, method: str, generator: torch.Generator) -> torch.Tensor:
    """Ranks a matrix's weights or rows in a random order, shaped as :func:`pruning_ranks`.

    A generator in the same state gives the same order, hence masks nested across k.
    """
    _check_method(method)
    count = weight.numel() if method == "weight" else weight.shape[0]
    return _inverse_permutation(torch.randperm(count, generator=generator))


def keep_mask_from_ranks(weight: torch.Tensor, order: torch.Tensor, percent: float
                         ) -> torch.Tensor:
    """Returns the bool (out, in) keep mask that prunes the first ``percent`` % in ``order``."""
    kept = order >= count_to_prune(percent, order.numel())
    if order.numel() == weight.numel():
        return kept.reshape(weight.shape)
    return kept[:, None].expand_as(weight).clone()


def weight_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of weights with the smallest magnitude."""
    return keep_mask_from_ranks(weight, pruning_ranks(weight, "weight"), percent)


def unit_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of rows (output neurons) with the smallest L2 norm."""
    return keep_mask_from_ranks(weight, pruning_ranks(weight, "unit"), percent)


def keep_masks(weights: Sequence[torch.Tensor], method: str, percent: float,
               generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Computes one keep mask per matrix; the last one keeps everything.

    Args:
        weights: The (out, in) matrices, first layer first.
        method: ``weight`` or ``unit``.
        percent: Share to prune from each prunable matrix, from 0 to 100.
        generator: None for magnitude pruning; else the random control, drawing one order per
            matrix from this generator, first layer first.

    Raises:
        ValueError: If the method is unknown.
    """
    _check_method(method)
    orders = [pruning_ranks(weight, method) if generator is None
              else random_ranks(weight, method, generator) for weight in weights[:-1]]
    masks = [keep_mask_from_ranks(weight, order, percent)
             for weight, order in zip(weights[:-1], orders, strict=True)]
    return [*masks, torch.ones_like(weights[-1], dtype=torch.bool)]


def layer_keep_masks(weights: Sequence[torch.Tensor], method: str, percent: float, layer: int
                     ) -> list[torch.Tensor]:
    """Computes masks that prune matrix ``layer`` only, as :func:`keep_masks` would prune it.

    Raises:
        ValueError: If the method is unknown or ``layer`` is not a prunable matrix.
    """
    _check_method(method)
    if not 0 <= layer < len(weights) - 1:
        raise ValueError(f"layer must be from 0 to {len(weights) - 2} (the last matrix is never "
                         f"pruned), got {layer}")
    masks = [torch.ones_like(weight, dtype=torch.bool) for weight in weights]
    masks[layer] = keep_mask_from_ranks(weights[layer], pruning_ranks(weights[layer], method),
                                        percent)
    return masks


def apply_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
                ) -> list[torch.Tensor]:
    """Returns copies of the matrices with the weights outside their masks set to zero."""
    return [weight.detach() * mask for weight, mask in zip(weights, masks, strict=True)]


def prune(weights: Sequence[torch.Tensor], method: str, percent: float) -> list[torch.Tensor]:
    """Returns copies of the matrices with ``percent`` % of each but the last pruned."""
    return apply_masks(weights, keep_masks(weights, method, percent))


def count_zero_weights(weights: Sequence[torch.Tensor]) -> tuple[int, int]:
    """Counts ``(zeros, total)`` weights over every matrix."""
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    total = sum(weight.numel() for weight in weights)
    return zeros, total


def sparsity(weights: Sequence[torch.Tensor]) -> float:
    """Returns the fraction of zero weights over the whole network, final matrix included."""
    zeros, total = count_zero_weights(weights)
    return zeros / total
