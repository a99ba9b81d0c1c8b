"""Pruning without retraining: rank weights or rows, then mask the first k % in that order.

Functions are pure: tensors in, new tensors out. Magnitude pruning ranks by |w| (``weight``) or
by the L2 norm of each row, a neuron's incoming weights (``unit``), within each matrix; or by
|w| over all prunable matrices together (``global``, one threshold); ties go to the earlier
position. The random control ranks in a random order drawn from an explicit generator, so it
removes exactly as many weights or rows per matrix. The last matrix (to the logits) is never
pruned. ``k`` is always a percent, from 0 to 100, of each prunable matrix.
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence

import torch

from prunekit import names

GLOBAL = "global"  # The method that ranks all prunable weights together.


def count_to_prune(k: float, total: int) -> int:
    """Returns ``round(k / 100 * total)``, halves rounded up, computed exactly.

    Raises:
        ValueError: If ``k`` is outside [0, 100] or ``total`` is negative.
    """
    if not 0 <= k <= 100:
        raise ValueError(f"k must be a percent from 0 to 100, got {k}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    exact = fractions.Fraction(str(k)) * total / 100
    return int(exact + fractions.Fraction(1, 2))  # int() floors a non-negative Fraction.


def _check_method(method: str) -> None:
    if method not in names.METHODS:
        raise ValueError(f"unknown pruning method {method!r}; allowed: "
                         f"{', '.join(names.METHODS)}")


def _inverse_permutation(order: torch.Tensor) -> torch.Tensor:
    positions = torch.empty_like(order)
    positions[order] = torch.arange(order.numel())
    return positions


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks 1-D scores from the smallest (0) up, earlier positions first among ties."""
    return _inverse_permutation(torch.argsort(scores, stable=True))


def pruning_ranks(weight: torch.Tensor, method: str,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Ranks a (out, in) matrix's weights by |w| (``weight``) or its rows by L2 norm (``unit``).

    With a ``generator``, the random control: a random order of as many weights or rows. A
    generator in the same state gives the same order, hence masks nested across k.

    Returns:
        The rank of each weight, flattened (``weight``), or of each row, shape (out,) (``unit``).

    Raises:
        ValueError: If the method is unknown.
    """
    _check_method(method)
    if generator is not None:
        count = weight.numel() if method == "weight" else weight.shape[0]
        return _inverse_permutation(torch.randperm(count, generator=generator))
    if method == "weight":
        return ranks(weight.detach().abs().flatten())
    return ranks(torch.linalg.vector_norm(weight.detach(), dim=1))


def network_ranks(weights: Sequence[torch.Tensor], method: str,
                  generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Ranks every prunable matrix (all but the last), first layer first.

    ``weight`` and ``unit`` rank within each matrix (:func:`pruning_ranks`); ``global`` ranks
    all prunable weights together (with a ``generator``: one random order over all of them),
    each matrix's ranks shaped as ``weight``'s; :func:`keep_masks` then needs ``pooled``.

    Raises:
        ValueError: If the method is unknown, even where no matrix is prunable.
    """
    _check_method(method)
    if method != GLOBAL:
        return [pruning_ranks(weight, method, generator) for weight in weights[:-1]]
    pooled = torch.cat([weight.detach().flatten() for weight in weights[:-1]])
    order = pruning_ranks(pooled, "weight", generator)
    return list(order.split([weight.numel() for weight in weights[:-1]]))


def keep_mask(weight: torch.Tensor, order: torch.Tensor, k: float, pool: int | None = None
              ) -> torch.Tensor:
    """Returns the bool (out, in) keep mask that prunes the first ``k`` % in ``order``.

    ``pool`` is how many weights ``order`` ranks among (global ranks); None: its own entries.
    """
    kept = order >= count_to_prune(k, order.numel() if pool is None else pool)
    if order.numel() == weight.numel():
        return kept.reshape(weight.shape)
    return kept[:, None].expand_as(weight).clone()


def keep_masks(weights: Sequence[torch.Tensor], orders: Sequence[torch.Tensor], k: float,
               layer: int | None = None, pooled: bool = False) -> list[torch.Tensor]:
    """Computes one keep mask per matrix from :func:`network_ranks`; the last keeps everything.

    Args:
        weights: The (out, in) matrices, first layer first.
        orders: The ranks of each prunable matrix.
        k: Percent to prune from each prunable matrix, from 0 to 100.
        layer: None prunes every prunable matrix; an index prunes that matrix alone.
        pooled: Whether the orders rank all prunable weights together (``global``), so k %
            of them all is pruned rather than k % of each matrix.

    Raises:
        ValueError: If ``layer`` is not a prunable matrix.
    """
    if layer is not None and not 0 <= layer < len(weights) - 1:
        raise ValueError(f"layer must be from 0 to {len(weights) - 2} (the last matrix is never "
                         f"pruned), got {layer}")
    pool = sum(order.numel() for order in orders) if pooled else None
    return [keep_mask(weight, order, k, pool) if layer in (None, index)
            else torch.ones_like(weight, dtype=torch.bool)
            for index, (weight, order) in enumerate(zip(weights[:-1], orders, strict=True))
            ] + [torch.ones_like(weights[-1], dtype=torch.bool)]


def apply_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
                ) -> list[torch.Tensor]:
    """Returns copies of the matrices with the weights outside their masks set to zero."""
    return [weight.detach() * mask for weight, mask in zip(weights, masks, strict=True)]


def prune(weights: Sequence[torch.Tensor], method: str, k: float,
          generator: torch.Generator | None = None, layer: int | None = None
          ) -> list[torch.Tensor]:
    """Returns copies of the matrices with ``k`` % of each but the last pruned.

    ``generator`` draws the random control's order (:func:`pruning_ranks`); ``layer`` prunes
    that matrix alone (:func:`keep_masks`).

    Raises:
        ValueError: If the method is unknown or ``layer`` is not a prunable matrix.
    """
    orders = network_ranks(weights, method, generator)
    return apply_masks(weights, keep_masks(weights, orders, k, layer, method == GLOBAL))


def count_zero_weights(weights: Sequence[torch.Tensor]) -> tuple[int, int]:
    """Counts ``(zeros, total)`` weights over every matrix."""
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    total = sum(weight.numel() for weight in weights)
    return zeros, total


def sparsity(weights: Sequence[torch.Tensor]) -> float:
    """Returns the fraction of zero weights over the whole network, final matrix included."""
    zeros, total = count_zero_weights(weights)
    return zeros / total
