"""Magnitude pruning without retraining: scoring, choosing what to remove, and masking.

All functions are pure: they take tensors (and, for the random control, an explicit seeded
generator) and return new tensors. Scores are separate from masks, so that each pruning method
is one scoring rule plus one shared selection rule. Ties are broken by position: among equal
scores, the earlier element (flat index for weights, row index for units) is pruned first.

Two variants serve as controls: random pruning removes the same number of weights or rows per
matrix as magnitude pruning, chosen uniformly at random; single-layer pruning prunes one
matrix only and keeps the others intact.
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence

import torch

METHODS = ("weight", "unit")


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


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks scores from the smallest (0) up, earlier positions first among ties.

    Args:
        scores: A 1-D tensor of scores.

    Returns:
        An int64 tensor shaped like ``scores``: the position of each element in pruning order.
    """
    order = torch.argsort(scores, stable=True)
    positions = torch.empty_like(order)
    positions[order] = torch.arange(order.numel())
    return positions


def smallest_mask(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Marks the ``count`` smallest scores, earlier positions first among ties.

    Args:
        scores: A 1-D tensor of scores.
        count: How many to mark, from 0 to ``scores.numel()``.

    Returns:
        A bool tensor shaped like ``scores``, True where the element is to be pruned.
    """
    return ranks(scores) < count


def pruning_ranks(weight: torch.Tensor, method: str) -> torch.Tensor:
    """Ranks a matrix's weights (``weight``: by |w|) or rows (``unit``: by L2 norm) for pruning.

    Args:
        weight: A (out, in) matrix; row i holds the incoming weights of output neuron i.
        method: ``weight`` or ``unit``.

    Returns:
        :func:`ranks` of the flattened |w| (weight) or of the row norms, shape (out,) (unit).

    Raises:
        ValueError: If the method is unknown.
    """
    if method == "weight":
        return ranks(weight.detach().abs().flatten())
    if method == "unit":
        return ranks(torch.linalg.vector_norm(weight.detach(), dim=1))
    raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")


def keep_mask_from_ranks(weight: torch.Tensor, order: torch.Tensor, percent: float
                         ) -> torch.Tensor:
    """Keeps all but the ``percent`` % first in pruning order, from :func:`pruning_ranks`.

    Args:
        weight: The (out, in) matrix the ranks were computed from.
        order: Its weights' ranks (``numel`` of them) or its rows' ranks (``out`` of them).
        percent: Share of weights or rows to prune, from 0 to 100.

    Returns:
        A bool (out, in) mask, True where the weight is kept.
    """
    kept = order >= count_to_prune(percent, order.numel())
    if order.numel() == weight.numel():
        return kept.reshape(weight.shape)
    return kept[:, None].expand_as(weight).clone()


def weight_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of weights with the smallest magnitude.

    Args:
        weight: A (out, in) matrix.
        percent: Share of its weights to prune, from 0 to 100.

    Returns:
        A bool (out, in) mask, True where the weight is kept.
    """
    return keep_mask_from_ranks(weight, pruning_ranks(weight, "weight"), percent)


def unit_keep_mask(weight: torch.Tensor, percent: float) -> torch.Tensor:
    """Keeps all but the ``percent`` % of output neurons with the smallest incoming L2 norm.

    Args:
        weight: A (out, in) matrix; row i holds the incoming weights of output neuron i.
        percent: Share of its rows to prune, from 0 to 100.

    Returns:
        A bool (out, in) mask, True where the weight is kept (whole rows are False).
    """
    return keep_mask_from_ranks(weight, pruning_ranks(weight, "unit"), percent)


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


def random_weight_keep_mask(weight: torch.Tensor, percent: float, generator: torch.Generator
                            ) -> torch.Tensor:
    """Keeps all but ``percent`` % of the weights, chosen uniformly at random.

    Removes as many weights as :func:`weight_keep_mask`. A generator in the same state gives
    nested masks: what is pruned at a lower percent is also pruned at a higher one.

    Args:
        weight: A (out, in) matrix; only its shape is used.
        percent: Share of its weights to prune, from 0 to 100.
        generator: CPU generator that draws the order of removal.

    Returns:
        A bool (out, in) mask, True where the weight is kept.
    """
    order = torch.randperm(weight.numel(), generator=generator)
    pruned = torch.zeros(weight.numel(), dtype=torch.bool)
    pruned[order[:count_to_prune(percent, weight.numel())]] = True
    return ~pruned.reshape(weight.shape)


def random_unit_keep_mask(weight: torch.Tensor, percent: float, generator: torch.Generator
                          ) -> torch.Tensor:
    """Keeps all but ``percent`` % of the rows (output neurons), chosen uniformly at random.

    Args:
        weight: A (out, in) matrix; only its shape is used.
        percent: Share of its rows to prune, from 0 to 100.
        generator: CPU generator that draws the order of removal.

    Returns:
        A bool (out, in) mask, True where the weight is kept (whole rows are False).
    """
    order = torch.randperm(weight.shape[0], generator=generator)
    pruned_rows = torch.zeros(weight.shape[0], dtype=torch.bool)
    pruned_rows[order[:count_to_prune(percent, weight.shape[0])]] = True
    return (~pruned_rows)[:, None].expand(weight.shape).clone()


_RANDOM_KEEP_MASKS = {"weight": random_weight_keep_mask, "unit": random_unit_keep_mask}


def random_keep_masks(weights: Sequence[torch.Tensor], method: str, percent: float,
                      generator: torch.Generator) -> list[torch.Tensor]:
    """Computes random-control masks: per matrix, as many removals as :func:`keep_masks`.

    Args:
        weights: The (out, in) matrices, first layer first; the last keeps everything.
        method: ``weight`` (random weights) or ``unit`` (random rows).
        percent: Share to prune from each prunable matrix, from 0 to 100.
        generator: CPU generator, consumed matrix by matrix, first layer first.

    Returns:
        One bool mask per matrix, True where the weight is kept.

    Raises:
        ValueError: If the method is unknown.
    """
    if method not in _RANDOM_KEEP_MASKS:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")
    masks = [_RANDOM_KEEP_MASKS[method](weight, percent, generator) for weight in weights[:-1]]
    return [*masks, torch.ones_like(weights[-1], dtype=torch.bool)]


def layer_keep_masks(weights: Sequence[torch.Tensor], method: str, percent: float, layer: int
                     ) -> list[torch.Tensor]:
    """Computes masks that prune matrix ``layer`` only, as :func:`keep_masks` would prune it.

    Args:
        weights: The (out, in) matrices, first layer first.
        method: ``weight`` or ``unit``.
        percent: Share to prune from matrix ``layer``, from 0 to 100.
        layer: Index of the matrix to prune; any but the last.

    Returns:
        One bool mask per matrix, all True except that of ``layer``.

    Raises:
        ValueError: If the method is unknown or ``layer`` is not a prunable matrix.
    """
    if method not in _KEEP_MASKS:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")
    if not 0 <= layer < len(weights) - 1:
        raise ValueError(f"layer must be from 0 to {len(weights) - 2} (the last matrix is never "
                         f"pruned), got {layer}")
    return [_KEEP_MASKS[method](weight, percent) if index == layer
            else torch.ones_like(weight, dtype=torch.bool)
            for index, weight in enumerate(weights)]


def apply_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
                ) -> list[torch.Tensor]:
    """Returns copies of the matrices with the weights outside their masks set to zero."""
    return [weight.detach() * mask for weight, mask in zip(weights, masks, strict=True)]


def prune(weights: Sequence[torch.Tensor], method: str, percent: float) -> list[torch.Tensor]:
    """Returns copies of the matrices with the pruned weights set to zero (no retraining).

    Args:
        weights: The dense (out, in) matrices, first layer first.
        method: ``weight`` or ``unit``.
        percent: Share to prune from each matrix but the last, from 0 to 100.

    Returns:
        The masked matrices.
    """
    return apply_masks(weights, keep_masks(weights, method, percent))


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
