"""Magnitude pruning without retraining: scoring, choosing what to remove, and masking.

All functions are pure: they take tensors and return new tensors. Scores are separate from
masks, so that each pruning method is one scoring rule plus one shared selection rule.
Ties are broken by position: among equal scores, the earlier element (flat index for weights,
row index for units) is pruned first.
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence

import torch

from prunekit import params

METHODS = params.PRUNING_METHODS


def percent_label(percent: float) -> str:
    """Names a pruning percentage for keys and file names: ``k90``, ``k97.5``.

    The label is exact (the shortest text that reads back as the same number), so distinct
    percentages never share a file.

    Args:
        percent: The pruning percentage, from 0 to 100.

    Returns:
        ``k`` followed by the integer if ``percent`` is whole, else by its float ``repr``.
    """
    return f"k{int(percent)}" if float(percent).is_integer() else f"k{float(percent)!r}"


def count_to_prune(percent: float, total: int) -> int:
    """Returns ``round(percent / 100 * total)``, halves rounded up, computed exactly.

    Args:
        percent: Share to prune, from 0 to 100.
        total: Number of candidates (weights or rows).

    Returns:
        How many candidates to prune, from 0 to ``total``.

    Raises:
        ValueError: If ``percent`` is outside [0, 100] or ``total`` is negative.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be from 0 to 100, got {percent}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    exact = fractions.Fraction(str(percent)) * total / 100
    return int(exact + fractions.Fraction(1, 2))  # int() floors a non-negative Fraction.


def smallest_mask(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Marks the ``count`` smallest scores, earlier positions first among ties.

    Args:
        scores: A 1-D tensor of scores.
        count: How many to mark, from 0 to ``scores.numel()``.

    Returns:
        A bool tensor shaped like ``scores``, True where the element is to be pruned.
    """
    order = torch.argsort(scores, stable=True)
    pruned = torch.zeros_like(scores, dtype=torch.bool)
    pruned[order[:count]] = True
    return pruned


def weight_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of weights with the smallest magnitude.

    Args:
        weight: A (out, in) matrix.
        percent: Share of its weights to prune, from 0 to 100.

    Returns:
        A bool (out, in) mask, True where the weight is kept.
    """
    flat_scores = weight.detach().abs().flatten()
    pruned = smallest_mask(flat_scores, count_to_prune(percent, flat_scores.numel()))
    return ~pruned.reshape(weight.shape)


def unit_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of output neurons with the smallest incoming L2 norm.

    Args:
        weight: A (out, in) matrix; row i holds the incoming weights of output neuron i.
        percent: Share of its rows to prune, from 0 to 100.

    Returns:
        A bool (out, in) mask, True where the weight is kept (whole rows are False).
    """
    row_norms = torch.linalg.vector_norm(weight.detach(), dim=1)  # (out,)
    pruned_rows = smallest_mask(row_norms, count_to_prune(percent, weight.shape[0]))
    return (~pruned_rows)[:, None].expand_as(weight).clone()


_KEEP_MASKS = {"weight": weight_keep_mask, "unit": unit_keep_mask}


def keep_masks(weights: Sequence[torch.Tensor], method: str, percent: float
               ) -> list[torch.Tensor]:
    """Computes the keep mask of every matrix; the last one (to the logits) keeps everything.

    Args:
        weights: The (out, in) matrices, first layer first.
        method: ``weight`` or ``unit``.
        percent: Share to prune from each prunable matrix, from 0 to 100.

    Returns:
        One bool mask per matrix, True where the weight is kept.

    Raises:
        ValueError: If the method is unknown.
    """
    if method not in _KEEP_MASKS:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")
    masks = [_KEEP_MASKS[method](weight, percent) for weight in weights[:-1]]
    return [*masks, torch.ones_like(weights[-1], dtype=torch.bool)]


def prune(weights: Sequence[torch.Tensor], method: str, percent: float) -> list[torch.Tensor]:
    """Returns copies of the matrices with the pruned weights set to zero (no retraining).

    Args:
        weights: The dense (out, in) matrices, first layer first.
        method: ``weight`` or ``unit``.
        percent: Share to prune from each matrix but the last, from 0 to 100.

    Returns:
        The masked matrices.
    """
    return [weight.detach() * mask for weight, mask in
            zip(weights, keep_masks(weights, method, percent), strict=True)]


def count_zero_weights(weights: Sequence[torch.Tensor]) -> tuple[int, int]:
    """Counts zero weights and all weights over every matrix.

    Args:
        weights: The matrices, of any shapes.

    Returns:
        ``(zeros, total)``.
    """
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    total = sum(weight.numel() for weight in weights)
    return zeros, total


def sparsity(weights: Sequence[torch.Tensor]) -> float:
    """Measures the share of zero weights over the whole network, final matrix included.

    Args:
        weights: The (out, in) matrices, first layer first.

    Returns:
        Zero weights over all weights, a fraction from 0.0 to 1.0.
    """
    zeros, total = count_zero_weights(weights)
    return zeros / total
