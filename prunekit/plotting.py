"""Labelled matplotlib charts of the pipeline's results (percent on every axis people read)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.

from matplotlib import figure as mpl_figure  # noqa: E402 - the backend must be chosen first.

METHOD_LABELS = {"weight": "weight pruning (smallest |w|)",
                 "unit": "unit pruning (smallest row L2 norm)"}


def sparsity_accuracy_figure(curves: Mapping[str, Sequence[Mapping[str, float]]],
                             dense_accuracy: float, dataset: str) -> mpl_figure.Figure:
    """Draws test accuracy against real network sparsity, one curve per pruning method.

    Args:
        curves: Per method, rows with ``sparsity`` and ``accuracy`` fractions and ``k``.
        dense_accuracy: Accuracy of the unpruned network (fraction), drawn as a reference.
        dataset: Dataset name for the title.

    Returns:
        The figure.
    """
    figure = mpl_figure.Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    for method, rows in curves.items():
        sparsities = [100 * row["sparsity"] for row in rows]
        accuracies = [100 * row["accuracy"] for row in rows]
        axes.plot(sparsities, accuracies, marker="o", label=METHOD_LABELS.get(method, method))
    axes.axhline(100 * dense_accuracy, color="grey", linestyle=":",
                 label=f"dense network ({100 * dense_accuracy:.2f} %)")
    axes.axhline(10, color="lightgrey", linestyle="--", label="chance (10 %)")
    axes.set_title(f"Pruning without retraining: accuracy vs sparsity ({dataset})")
    axes.set_xlabel("Sparsity of the whole network (% of weights that are zero)")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    return figure


def training_curve_figure(history: Sequence[Mapping[str, float]], dataset: str
                          ) -> mpl_figure.Figure:
    """Draws loss and accuracy per epoch, training and test, side by side.

    Args:
        history: One row per epoch with ``epoch``, ``train_loss``, ``test_loss``,
            ``train_accuracy`` and ``test_accuracy`` (fractions).
        dataset: Dataset name for the title.

    Returns:
        The figure.
    """
    figure = mpl_figure.Figure(figsize=(10, 4))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for split in ("train", "test"):
        loss_axes.plot(epochs, [row[f"{split}_loss"] for row in history], marker="o",
                       label=split)
        accuracy_axes.plot(epochs, [100 * row[f"{split}_accuracy"] for row in history],
                           marker="o", label=split)
    loss_axes.set_title("Cross-entropy loss")
    loss_axes.set_ylabel("Loss (nats per sample)")
    accuracy_axes.set_title("Accuracy")
    accuracy_axes.set_ylabel("Accuracy (%)")
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlabel("Epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"Training the dense MLP on {dataset}")
    return figure
