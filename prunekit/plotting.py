"""Labelled matplotlib charts of the pipeline's results (percent on every axis people read)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas
from matplotlib import figure as mpl_figure  # Figures without pyplot: no display needed.

from prunekit import aggregate

METHOD_LABELS = {"weight": "weight pruning (smallest |w| of each matrix)",
                 "unit": "unit pruning (smallest row L2 norm)",
                 "global": "global pruning (smallest |w| of all matrices)"}
METHOD_COLORS = {"weight": "tab:blue", "unit": "tab:orange", "global": "tab:green"}


def sparsity_accuracy_figure(curves: pandas.DataFrame, recipe: str, dataset: str
                             ) -> mpl_figure.Figure:
    """Draws one recipe's accuracy against sparsity, per method a mean and min-max band.

    ``curves`` are :func:`prunekit.aggregate.accuracy_curves` rows; the random control is dashed.
    """
    figure = mpl_figure.Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    rows = curves[curves["recipe"] == recipe]
    for method in [method for method in METHOD_LABELS if (rows["method"] == method).any()]:
        _control_bands(axes, rows[rows["method"] == method], METHOD_COLORS[method],
                       METHOD_LABELS[method])
    _accuracy_axes(axes, "Sparsity of the whole network (% of weights that are zero)")
    axes.set_title(f"Pruning without retraining: recipe {recipe}, mean and min-max over "
                   f"seeds ({dataset})", fontsize="medium")
    axes.legend(loc="lower left", fontsize="small")
    return figure


# Lines per method: the fastest plan of each case, and the fastest dense plan's.
SERIES_STYLES = {
    "fastest": {"linestyle": "-", "marker": "o", "label": "fastest plan"},
    "fastest_dense": {"linestyle": ":", "marker": "s",
                      "label": "fastest dense plan (masked network)"},
}


def speedup_figure(rows: pandas.DataFrame,
                   title: str = "Inference speed-up of pruned networks over the dense one"
                   ) -> mpl_figure.Figure:
    """Draws speed-up over the masked dense network against sparsity, one panel per batch size.

    Per method, in its colour: a solid line for the fastest plan of each case, a dotted one for
    the fastest plan of the full-size masked network (dense products, ``fastest_dense_plan``)
    and a wide faded one for the ideal speed-up (``nonzero_ideal_speedup``); a grey line marks
    the baseline (1x).

    Args:
        rows: Benchmark rows (``plots/benchmark/all.csv``) of one recipe.
        title: The figure's title.

    Raises:
        ValueError: If ``rows`` is empty.
    """
    if rows.empty:
        raise ValueError("no benchmark rows to plot")
    batch_sizes = sorted(rows["batch_size"].unique())
    methods = [method for method in METHOD_LABELS if (rows["method"] == method).any()]
    methods += sorted(set(rows["method"]) - set(methods))
    figure = mpl_figure.Figure(figsize=(5.2 * len(batch_sizes), 4.6), layout="constrained")
    panels = figure.subplots(1, len(batch_sizes), squeeze=False, sharey=True)[0]
    for axes, batch_size in zip(panels, batch_sizes, strict=True):
        for method in methods:
            color = METHOD_COLORS.get(method)
            chosen = rows[(rows["batch_size"] == batch_size) & (rows["method"] == method)]
            ideal = chosen.groupby("sparsity_percent")["nonzero_ideal_speedup"].first()
            if len(ideal):
                axes.plot(ideal.index, ideal.to_numpy(), color=color, alpha=0.35, linewidth=3,
                          label=f"{method}: ideal (MAC ratio)")
            for series, style in SERIES_STYLES.items():
                points = aggregate.fastest_rows(chosen, dense=series == "fastest_dense")
                points = points.sort_values("sparsity_percent")
                if len(points):
                    axes.plot(points["sparsity_percent"], points["speedup_vs_dense"],
                              color=color, linestyle=style["linestyle"], marker=style["marker"],
                              markersize=4, label=f"{method}: {style['label']}")
        axes.axhline(1.0, color="grey", linewidth=1, label="torch masked dense baseline (1x)")
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


RECIPE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                 "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _recipe_color(recipes: Sequence[str], recipe: str) -> str:
    """Gives each recipe the same colour in every chart, in the order recipes are listed."""
    return RECIPE_COLORS[list(recipes).index(recipe) % len(RECIPE_COLORS)]


def _percent_band(axes: Any, rows: pandas.DataFrame, x: str, color: str, label: str | None,
                  linestyle: str = "-") -> None:
    """Draws ``accuracy_mean`` and its min-max band against column ``x``, fractions as %."""
    xs = 100 * rows[x].to_numpy(dtype=float)
    axes.plot(xs, 100 * rows["accuracy_mean"].to_numpy(dtype=float), color=color,
              linestyle=linestyle, marker="o" if linestyle == "-" else None, markersize=3,
              label=label)
    axes.fill_between(xs, 100 * rows["accuracy_min"].to_numpy(dtype=float),
                      100 * rows["accuracy_max"].to_numpy(dtype=float), color=color,
                      alpha=0.2 if linestyle == "-" else 0.08, linewidth=0)


def _accuracy_axes(axes: Any, xlabel: str) -> None:
    """Labels an accuracy chart in percent, from 0 to 100 on both axes, with chance marked."""
    axes.axhline(10, color="lightgrey", linestyle=":", label="chance (10 %)")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("Test accuracy (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)


def _control_bands(axes: Any, rows: pandas.DataFrame, color: str, label: str,
                   x: str = "sparsity") -> None:
    """Draws the magnitude curve of ``rows`` (one method) solid and its random control dashed."""
    for control, linestyle in (("magnitude", "-"), ("random", "--")):
        chosen = rows[rows["control"] == control]
        if len(chosen):
            _percent_band(axes, chosen.sort_values(x), x, color,
                          label if control == "magnitude" else f"{label}: random control",
                          linestyle)


# The budgets of :func:`budget_figure`: column of :func:`prunekit.aggregate.budget_curves` and
# what its axis says.
BUDGETS = {"kept_percent": "Weights the compact network keeps (% of the dense network's;\n"
                           "= a sparse pass's multiply-adds, log scale)",
           "compact_percent": "Entries of the compact network's matrices (% of the dense;\n"
                              "= a dense pass's multiply-adds, log scale)"}


def budget_figure(curves: pandas.DataFrame, dataset: str) -> mpl_figure.Figure:
    """Draws accuracy against each budget of :data:`BUDGETS`, a column of panels per recipe.

    Every method on one axis, magnitude solid and random control dashed: methods compared at
    matched budgets rather than at equal k.
    """
    recipes = list(curves["recipe"].unique())
    figure = mpl_figure.Figure(figsize=(4.2 * len(recipes), 8), layout="constrained")
    panels = figure.subplots(len(BUDGETS), len(recipes), squeeze=False, sharey=True)
    for row, (budget, label) in zip(panels, BUDGETS.items(), strict=True):
        for axes, recipe in zip(row, recipes, strict=True):
            rows = curves[(curves["recipe"] == recipe) & (curves[budget] > 0)]
            for method in [method for method in METHOD_LABELS if (rows["method"] == method).any()]:
                _control_bands(axes, rows[rows["method"] == method].assign(
                    budget=rows[budget] / 100), METHOD_COLORS[method], method, "budget")
            _accuracy_axes(axes, label)
            axes.set_xscale("log")
            axes.set_xlim(0.3, 100)
            axes.set_title(f"recipe {recipe}")
    handles, labels = panels[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=4, fontsize="small")
    figure.suptitle(f"Accuracy at matched budgets, mean and min-max over seeds ({dataset})\n"
                    "dashed: random pruning of as many weights or units")
    return figure


def seeds_sparsity_accuracy_figure(aggregated: pandas.DataFrame, dataset: str
                                   ) -> mpl_figure.Figure:
    """Draws accuracy against sparsity, a panel per method, a mean and band per recipe.

    The random control is dashed, in the recipe's colour. ``aggregated`` is
    :func:`prunekit.aggregate.aggregate_seeds` output.
    """
    whole = aggregated[aggregated["scope"] == "all"]
    methods = [method for method in METHOD_LABELS if (whole["method"] == method).any()]
    recipes = list(whole["recipe"].unique())
    figure = mpl_figure.Figure(figsize=(6 * len(methods), 4.8), layout="constrained")
    panels = figure.subplots(1, len(methods), squeeze=False, sharey=True)[0]
    for axes, method in zip(panels, methods, strict=True):
        for recipe in recipes:
            _control_bands(axes, whole[(whole["method"] == method) & (whole["recipe"] == recipe)],
                           _recipe_color(recipes, recipe), recipe)
        _accuracy_axes(axes, "Sparsity of the whole network (% of weights that are zero)")
        axes.set_title(METHOD_LABELS[method])
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    figure.suptitle(f"Pruning without retraining, mean and min-max over seeds ({dataset})\n"
                    "dashed: random pruning of as many weights or units")
    return figure


def layer_sensitivity_figure(aggregated: pandas.DataFrame, method: str, recipe: str, dataset: str
                             ) -> mpl_figure.Figure:
    """Draws accuracy against k when one matrix alone is pruned, a line per matrix.

    Pruning every prunable matrix at once is drawn in black for reference.

    Raises:
        ValueError: If ``aggregated`` has no rows for ``method`` and ``recipe``.
    """
    rows = aggregated[(aggregated["method"] == method) & (aggregated["recipe"] == recipe)
                      & (aggregated["control"] == "magnitude")]
    if rows.empty:
        raise ValueError(f"no {method} pruning rows for recipe {recipe!r}")
    rows = rows.assign(fraction=rows["k"] / 100)
    figure = mpl_figure.Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    scopes = sorted(scope for scope in rows["scope"].unique() if scope != "all")
    for index, scope in enumerate(scopes):
        _percent_band(axes, rows[rows["scope"] == scope].sort_values("k"), "fraction",
                      RECIPE_COLORS[index % len(RECIPE_COLORS)], f"only {scope} pruned")
    if (rows["scope"] == "all").any():
        _percent_band(axes, rows[rows["scope"] == "all"].sort_values("k"), "fraction", "black",
                      "all prunable matrices")
    _accuracy_axes(axes, "k: share pruned of each pruned matrix (%)")
    axes.set_title(f"Layer sensitivity: {METHOD_LABELS.get(method, method)}\n"
                   f"recipe {recipe}, mean and min-max over seeds ({dataset})")
    axes.legend(loc="lower left", fontsize="small")
    return figure


def recipe_training_figure(curves: pandas.DataFrame, dataset: str) -> mpl_figure.Figure:
    """Draws training loss and test accuracy per epoch, per recipe mean and min-max over seeds.

    ``curves`` is :func:`prunekit.aggregate.training_curves` output; where it has the mean
    validation accuracy, that is drawn dashed beside the test accuracy.
    """
    figure = mpl_figure.Figure(figsize=(11, 4.2), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    recipes = list(curves["recipe"].unique())
    for recipe in recipes:
        color = _recipe_color(recipes, recipe)
        rows = curves[curves["recipe"] == recipe].sort_values("epoch")
        for axes, column, scale in ((loss_axes, "train_loss", 1),
                                    (accuracy_axes, "test_accuracy", 100)):
            axes.plot(rows["epoch"], scale * rows[f"{column}_mean"], color=color, marker="o",
                      markersize=3, label=recipe)
            axes.fill_between(rows["epoch"], scale * rows[f"{column}_min"],
                              scale * rows[f"{column}_max"], color=color, alpha=0.2,
                              linewidth=0)
        if "validation_accuracy_mean" in rows:
            accuracy_axes.plot(rows["epoch"], 100 * rows["validation_accuracy_mean"],
                               color=color, linestyle="--", linewidth=1)
    loss_axes.set_title("Training cross-entropy (penalties excluded)")
    loss_axes.set_ylabel("Loss (nats per sample)")
    loss_axes.set_yscale("log")
    accuracy_axes.set_title("Test accuracy" + (", validation dashed"
                                               if "validation_accuracy_mean" in curves else ""))
    accuracy_axes.set_ylabel("Accuracy (%)")
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlabel("Epoch")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(f"Training recipes on {dataset}, mean and min-max over seeds")
    return figure


def penalty_tradeoff_figure(runs: pandas.DataFrame, penalty: str, columns: Mapping[str, str]
                            ) -> mpl_figure.Figure:
    """Draws accuracy against penalty strength (docs/recipes.md), mean and min-max over seeds.

    Args:
        runs: ``strength`` (> 0, log axis), ``seed`` and the accuracy columns (fractions).
        penalty: The penalty's name for the title, e.g. ``L1``.
        columns: Column to legend label, e.g. ``{"dense": "dense", "weight_k90": "weight k90"}``.
    """
    figure = mpl_figure.Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    per_strength = runs.groupby("strength")
    for index, (column, label) in enumerate(columns.items()):
        stats = per_strength[column].agg(["mean", "min", "max"])
        color = RECIPE_COLORS[index % len(RECIPE_COLORS)]
        axes.plot(stats.index, 100 * stats["mean"], color=color, marker="o", label=label)
        axes.fill_between(stats.index, 100 * stats["min"], 100 * stats["max"], color=color,
                          alpha=0.2, linewidth=0)
    axes.set_xscale("log")
    axes.set_xlabel(f"{penalty} strength (log scale)")
    axes.set_ylabel("Test accuracy (%)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    axes.set_title(f"{penalty} penalty: what it buys after pruning and costs the dense network\n"
                   "mean and min-max over seeds")
    return figure


def weights_figure(histograms: pandas.DataFrame, removed: pandas.DataFrame, method: str,
                   dataset: str) -> mpl_figure.Figure:
    """Draws, per prunable matrix, each recipe's |w| histogram and the L1 mass ``method`` removes.

    ``histograms`` and ``removed`` are :func:`prunekit.aggregate.weight_statistics` output.
    """
    layers = list(histograms["layer"].unique())
    recipes = list(histograms["recipe"].unique())
    figure = mpl_figure.Figure(figsize=(4 * len(layers), 7.5), layout="constrained")
    panels = figure.subplots(2, len(layers), squeeze=False)
    shares = histograms[histograms["quantity"] == "abs_weight_histogram"]
    mass = removed[removed["quantity"] == f"l1_removed_{method}"]
    for column, layer in enumerate(layers):
        top, bottom = panels[0][column], panels[1][column]
        for recipe in recipes:
            color = _recipe_color(recipes, recipe)
            chosen = shares[(shares["recipe"] == recipe) & (shares["layer"] == layer)]
            top.plot(chosen["x"], 100 * chosen["value"], color=color, label=recipe)
            chosen = mass[(mass["recipe"] == recipe) & (mass["layer"] == layer)]
            bottom.plot(chosen["x"], 100 * chosen["value"], color=color, marker="o",
                        markersize=3, label=recipe)
        top.set_xscale("log")
        top.set_title(f"{layer}: |w| after training")
        top.set_xlabel("|w| (upper edge of a quarter-decade bin, log scale)")
        top.set_ylabel("Non-zero weights in the bin (%)")
        bottom.plot([0, 100], [0, 100], color="lightgrey", linestyle=":", label="k % of the mass")
        bottom.set_title(f"{layer}: L1 mass that {method} pruning removes")
        bottom.set_xlabel("k: share of the matrix pruned (%)")
        bottom.set_ylabel("Share of the matrix's L1 mass removed (%)")
        for axes in (top, bottom):
            axes.grid(alpha=0.3)
    handles, labels = panels[1][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    figure.suptitle(f"What pruning acts on: weights of each recipe, mean over seeds ({dataset})")
    return figure
