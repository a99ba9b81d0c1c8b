"""Accuracy, sparsity and equivalence measurements of dense, masked and compact networks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from prunekit import compact, data, model, pruning, training

# A compact network sums fewer (or reordered) terms than the masked one; float32 rounding
# differs by far less than this, relative to the largest logit.
LOGIT_TOLERANCE = 1e-4


class EquivalenceError(RuntimeError):
    """Raised when a compact artifact does not reproduce its masked network's logits."""


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


def evaluate_network(weights: Sequence[torch.Tensor], split: data.Split,
                     network: compact.CompactNetwork | None = None) -> dict[str, float]:
    """Measures a (masked) network and, if given, checks its compact form against it.

    Args:
        weights: Full-size (out, in) matrices, pruned weights set to zero.
        split: The data to evaluate on.
        network: The compact artifact made from ``weights``, or None.

    Returns:
        ``accuracy`` and ``loss`` on the split, ``sparsity`` (fraction of zero weights over all
        matrices), and with ``network`` its ``max_logit_difference`` from the masked network
        (relative to the largest logit).

    Raises:
        EquivalenceError: If the compact network's logits differ beyond ``LOGIT_TOLERANCE``.
    """
    with torch.no_grad():
        logits = model.forward_weights(weights, split.images)  # (samples, 10)
    loss, accuracy = training.loss_and_accuracy(logits, split.labels)
    result = {"accuracy": accuracy, "loss": loss, "sparsity": pruning.sparsity(weights)}
    if network is not None:
        with torch.no_grad():
            difference = max_logit_difference(logits, network.logits(split.images))
        if difference > LOGIT_TOLERANCE:
            raise EquivalenceError(f"compact network differs from the masked one by "
                                   f"{difference:.2e} (relative), above {LOGIT_TOLERANCE}")
        result["max_logit_difference"] = difference
    return result


def curve_rows(results: Mapping[str, Mapping[str, float]]) -> list[dict[str, float]]:
    """Turns one method's results into plot rows in percent, sorted by sparsity.

    Args:
        results: Per k label, a mapping with ``k``, ``sparsity`` and ``accuracy`` fractions.

    Returns:
        Rows with ``k``, ``sparsity_percent`` and ``accuracy_percent``.
    """
    rows = [{"k": result["k"], "sparsity_percent": round(100 * result["sparsity"], 4),
             "accuracy_percent": round(100 * result["accuracy"], 4)}
            for result in results.values()]
    return sorted(rows, key=lambda row: row["sparsity_percent"])
