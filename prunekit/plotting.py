"""Labelled matplotlib charts of the pipeline's results (percent on every axis people read)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib import figure as mpl_figure  # Figures without pyplot: no display needed.

from prunekit import files, sparse_inference

METHOD_LABELS = {"weight": "weight pruning (smallest |w|)",
                 "unit": "unit pruning (smallest row L2 norm)"}
METHOD_COLORS = {"weight": "tab:blue", "unit": "tab:orange"}


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
        axes.plot(sparsities, accuracies, marker="o", color=METHOD_COLORS.get(method),
                  label=METHOD_LABELS.get(method, method))
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


# Lines per method: the fastest plan of each case, and the fastest dense engine's.
SERIES_STYLES = {
    "fastest": {"linestyle": "-", "marker": "o", "label": "fastest plan"},
    "masked_ort": {"linestyle": ":", "marker": "s", "label": "onnxruntime, masked dense"},
}


def speedup_figure(rows: Iterable[Mapping[str, Any]],
                   title: str = "Inference speed-up of pruned networks over the dense one"
                   ) -> mpl_figure.Figure:
    """Draws speed-up over the masked dense network against sparsity, one panel per batch size.

    Each method gets a colour; a solid line follows the fastest plan of each case, a dotted one
    the masked network on onnxruntime (the fastest dense engine), and the ideal speed-up
    (``nonzero_ideal_speedup``: dense multiply-adds over the non-zero weights, the fewest any
    plan needs) is drawn wide and faded in the method's colour, and a grey line marks the dense
    baseline (1x).

    Args:
        rows: The rows of ``plots/benchmark/all.csv``, either as ``csv.DictReader`` yields them
            (all values strings) or as ``pandas.DataFrame.to_dict("records")`` gives them; the
            columns used are ``method``, ``plan``, ``batch_size``, ``sparsity_percent``,
            ``speedup_vs_dense``, ``is_fastest`` and ``nonzero_ideal_speedup``. Values are
            converted with ``float``.
        title: The figure's title.

    Returns:
        The figure.

    Raises:
        ValueError: If ``rows`` is empty.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no benchmark rows to plot")
    batch_sizes = sorted({int(float(row["batch_size"])) for row in rows})
    methods = [method for method in ("weight", "unit")
               if any(row["method"] == method for row in rows)]
    methods += sorted({str(row["method"]) for row in rows} - set(methods))
    figure = mpl_figure.Figure(figsize=(5.2 * len(batch_sizes), 4.6), layout="constrained")
    panels = figure.subplots(1, len(batch_sizes), squeeze=False, sharey=True)[0]
    for axes, batch_size in zip(panels, batch_sizes, strict=True):
        batch_rows = [row for row in rows if int(float(row["batch_size"])) == batch_size]
        for method in methods:
            color = METHOD_COLORS.get(method)
            method_rows = [row for row in batch_rows if row["method"] == method]
            ideal = {float(row["sparsity_percent"]): float(row["nonzero_ideal_speedup"])
                     for row in method_rows}
            if ideal:
                axes.plot(sorted(ideal), [ideal[x] for x in sorted(ideal)], color=color,
                          alpha=0.35, linewidth=3, label=f"{method}: ideal (MAC ratio)")
            for series, style in SERIES_STYLES.items():
                points = sorted((float(row["sparsity_percent"]), float(row["speedup_vs_dense"]))
                                for row in method_rows
                                if (files.csv_bool(row["is_fastest"]) if series == "fastest"
                                    else row["plan"] == series))
                if points:
                    axes.plot([x for x, _ in points], [y for _, y in points], color=color,
                              linestyle=style["linestyle"], marker=style["marker"],
                              markersize=4, label=f"{method}: {style['label']}")
        axes.axhline(1.0, color="grey", linewidth=1,
                     label=f"{sparse_inference.BASELINE} baseline (1x)")
        axes.set_yscale("log")
        axes.set_xlim(0, 100)
        axes.set_title(f"batch {batch_size}")
        axes.set_xlabel("Sparsity of the whole network (% of weights that are zero)")
        axes.grid(alpha=0.3, which="both")
    panels[0].set_ylabel("Speed-up over the torch masked dense network (x, log scale)")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)),
                  fontsize="small")
    figure.suptitle(title)
    return figure
