"""Accuracy, sparsity and equivalence measurements of dense, masked and compact networks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from prunekit import compact, data, model, pruning, training

# A compact network sums fewer (or reordered) terms than the masked one; float32 rounding
# differs by far less than this, relative to the largest logit.
LOGIT_TOLERANCE = 1e-4
# The (method, k) accuracies that metrics/accuracy.json reports beside the dense network's.
HEADLINE_CASES = (("weight", 90), ("weight", 95), ("unit", 50), ("unit", 70))


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


def accuracy_rows(method: str, results: Mapping[str, Mapping[str, float]]
                  ) -> list[dict[str, Any]]:
    """Turns one method's results into plot rows in percent, sorted by sparsity.

    Args:
        method: The pruning method, e.g. ``weight``.
        results: Per k label, a mapping with ``k``, ``sparsity`` and ``accuracy`` fractions.

    Returns:
        Rows with ``series`` (e.g. ``weight pruning``), ``method``, ``k``,
        ``sparsity_percent`` and ``accuracy_percent``.
    """
    rows = [{"series": f"{method} pruning", "method": method, "k": result["k"],
             "sparsity_percent": round(100 * result["sparsity"], 4),
             "accuracy_percent": round(100 * result["accuracy"], 4)}
            for result in results.values()]
    return sorted(rows, key=lambda row: row["sparsity_percent"])


def headline_accuracies(dense_accuracy: float,
                        results: Mapping[str, Mapping[str, Mapping[str, float]]],
                        cases: Sequence[tuple[str, float]] = HEADLINE_CASES
                        ) -> dict[str, float]:
    """Picks the accuracies that ``dvc metrics show`` and ``dvc exp show`` lead with.

    Args:
        dense_accuracy: The unpruned network's test accuracy.
        results: Per method and k label, a mapping with ``accuracy``.
        cases: ``(method, k)`` pairs to report; pairs not measured are left out.

    Returns:
        ``dense`` and ``<method>_<k label>`` test accuracies (fractions).
    """
    headline = {"dense": dense_accuracy}
    for method, percent in cases:
        label = pruning.percent_label(percent)
        if label in results.get(method, {}):
            headline[f"{method}_{label}"] = results[method][label]["accuracy"]
    return headline
