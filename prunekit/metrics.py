"""Equivalence of a compact network with the masked one it was made from."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prunekit import compact, model

# A compact network sums fewer (or reordered) terms than the masked one; float32 rounding
# differs by far less than this, relative to the largest logit.
LOGIT_TOLERANCE = 1e-4


class EquivalenceError(RuntimeError):
    """Raised when a compact network does not reproduce its masked network's logits."""


def max_logit_difference(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Measures how far candidate logits are from reference ones, relative to the largest logit.

    Args:
        reference: The reference logits, shape (samples, 10).
        candidate: The logits to compare, same shape.

    Returns:
        max |candidate - reference| divided by the largest |reference| logit (by 1.0 if that
        is smaller).
    """
    scale = max(float(reference.abs().max()), 1.0)
    return float((candidate - reference).abs().max()) / scale


@torch.no_grad()
def check_equivalence(masked_weights: Sequence[torch.Tensor], network: compact.CompactNetwork,
                      images: torch.Tensor) -> float:
    """Checks that a compact network gives its masked network's logits on some images.

    Args:
        masked_weights: Full-size (out, in) matrices, pruned weights set to zero.
        network: The compact network made from them.
        images: Flattened images, shape (samples, 784).

    Returns:
        The :func:`max_logit_difference` of the compact network from the masked one.

    Raises:
        EquivalenceError: If it exceeds ``LOGIT_TOLERANCE``.
    """
    difference = max_logit_difference(model.forward_weights(masked_weights, images),
                                      network.logits(images))
    if difference > LOGIT_TOLERANCE:
        raise EquivalenceError(f"compact network differs from the masked one by "
                               f"{difference:.2e} (relative), above {LOGIT_TOLERANCE}")
    return difference
