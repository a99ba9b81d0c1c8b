"""Statistics over seeds of the sweep tables: spread per k and the headline accuracies."""

from __future__ import annotations

import pandas as pd

GROUP_KEYS = ["recipe", "method", "control", "scope", "k"]
# Headline columns: (name, method, k) of magnitude pruning of every prunable matrix.
HEADLINE = (("dense", "weight", 0), ("weight_k90", "weight", 90), ("weight_k95", "weight", 95),
            ("unit_k50", "unit", 50), ("unit_k70", "unit", 70))


def aggregate_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """Summarises accuracy over seeds (and random draws) per recipe, method, control, scope and k.

    Args:
        results: Sweep rows (:data:`prunekit.sweep.COLUMNS`) of several networks, with a
            ``recipe`` and a ``seed`` column added.

    Returns:
        One row per group of :data:`GROUP_KEYS`, in first-seen order, with ``accuracy_mean``,
        ``accuracy_std`` (sample standard deviation; 0 for a single run), ``accuracy_min``,
        ``accuracy_max``, ``sparsity`` and ``dead_units`` (means), ``seeds`` (distinct seeds)
        and ``runs`` (rows: seeds times draws). Fractions stay fractions.

    Raises:
        ValueError: If a column the summary needs is missing.
    """
    missing = sorted({*GROUP_KEYS, "seed", "accuracy", "sparsity", "dead_units"}
                     - set(results.columns))
    if missing:
        raise ValueError(f"results lack the columns {missing}")
    table = results.groupby(GROUP_KEYS, sort=False).agg(
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        accuracy_min=("accuracy", "min"), accuracy_max=("accuracy", "max"),
        sparsity=("sparsity", "mean"), dead_units=("dead_units", "mean"),
        seeds=("seed", "nunique"), runs=("accuracy", "size")).reset_index()
    table["accuracy_std"] = table["accuracy_std"].fillna(0.0)
    return table


def headline(aggregated: pd.DataFrame) -> pd.DataFrame:
    """Picks the mean accuracies people compare: dense, weight k90 and k95, unit k50 and k70.

    Args:
        aggregated: The output of :func:`aggregate_seeds`.

    Returns:
        One row per recipe (index ``recipe``, first-seen order) and one column per
        :data:`HEADLINE` name; NaN where that k was not measured.
    """
    magnitude = aggregated[(aggregated["control"] == "magnitude")
                           & (aggregated["scope"] == "all")]
    recipes = pd.Index(aggregated["recipe"].unique(), name="recipe")
    columns = {}
    for name, method, percent in HEADLINE:
        chosen = magnitude[(magnitude["method"] == method) & (magnitude["k"] == percent)]
        columns[name] = chosen.set_index("recipe")["accuracy_mean"].reindex(recipes)
    return pd.DataFrame(columns, index=recipes)


def percent_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Adds percent copies of the accuracy statistics and sparsity, for charts people read."""
    extra = {f"{column}_percent": (100 * table[column]).round(4)
             for column in ("accuracy_mean", "accuracy_std", "accuracy_min", "accuracy_max",
                            "sparsity") if column in table}
    return table.assign(**extra)


def accuracy_curves(aggregated: pd.DataFrame, method: str) -> pd.DataFrame:
    """Selects one method's curves over the whole network, magnitude and random, every recipe.

    Args:
        aggregated: The output of :func:`aggregate_seeds`.
        method: ``weight`` or ``unit``.

    Returns:
        The rows of ``method`` with ``scope`` ``all``, a ``series`` column (the recipe, or
        ``<recipe>: random control``) first and percent columns added.
    """
    rows = aggregated[(aggregated["method"] == method) & (aggregated["scope"] == "all")]
    series = rows["recipe"].where(rows["control"] == "magnitude",
                                  rows["recipe"] + ": " + rows["control"] + " control")
    return percent_columns(rows.assign(series=series)[["series", *rows.columns]])


def layer_curves(aggregated: pd.DataFrame, method: str, recipe: str) -> pd.DataFrame:
    """Selects one method's magnitude pruning of single matrices and of all, for one recipe.

    Args:
        aggregated: The output of :func:`aggregate_seeds`.
        method: ``weight`` or ``unit``.
        recipe: The recipe whose networks are shown.

    Returns:
        The rows with a ``series`` column (``only W1 pruned`` ... or ``all prunable
        matrices``) first and percent columns added.
    """
    rows = aggregated[(aggregated["method"] == method) & (aggregated["recipe"] == recipe)
                      & (aggregated["control"] == "magnitude")]
    series = ("only " + rows["scope"] + " pruned").where(rows["scope"] != "all",
                                                        "all prunable matrices")
    return percent_columns(rows.assign(series=series)[["series", *rows.columns]])


def training_curves(history: pd.DataFrame) -> pd.DataFrame:
    """Summarises training histories over seeds: per recipe and epoch, mean, min and max.

    Args:
        history: Rows of :func:`prunekit.training.history_table` of several networks, with
            ``recipe`` and ``seed`` columns added.

    Returns:
        One row per recipe and epoch with ``series`` (the recipe), ``train_loss`` and
        ``test_accuracy`` means, minima and maxima, and ``test_accuracy_percent`` (the mean).
    """
    table = history.groupby(["recipe", "epoch"], sort=False).agg(
        train_loss_mean=("train_loss", "mean"), train_loss_min=("train_loss", "min"),
        train_loss_max=("train_loss", "max"), test_accuracy_mean=("test_accuracy", "mean"),
        test_accuracy_min=("test_accuracy", "min"),
        test_accuracy_max=("test_accuracy", "max")).reset_index()
    return table.assign(series=table["recipe"],
                        test_accuracy_percent=(100 * table["test_accuracy_mean"]).round(4))


def fastest_speedups(rows: pd.DataFrame, reference: str) -> dict[str, pd.DataFrame]:
    """Lays out each case's fastest plan, and the reference recipe's ideal, per batch size.

    Args:
        rows: Benchmark rows (:data:`prunekit.benchmarking.ROW_KEYS`) of several recipes, with
            a ``recipe`` column added.
        reference: The recipe whose ideal speed-up (dense over non-zero multiply-adds) is
            drawn too.

    Returns:
        Per name ``batch<N>``, rows sorted by series and sparsity with ``series`` (e.g.
        ``adam: weight`` or ``weight: ideal``), ``recipe``, ``method``, ``k``,
        ``sparsity_percent``, ``speedup`` and ``plan``.
    """
    fastest = rows[rows["is_fastest"].astype(str).str.lower() == "true"]
    columns = ["series", "recipe", "method", "k", "sparsity_percent", "speedup", "plan",
               "batch_size"]
    measured = fastest.assign(series=fastest["recipe"] + ": " + fastest["method"],
                              speedup=fastest["speedup_vs_dense"])
    ideal = fastest[fastest["recipe"] == reference]
    ideal = ideal.assign(series=ideal["method"] + ": ideal",
                         speedup=ideal["nonzero_ideal_speedup"], plan="ideal")
    table = pd.concat([measured[columns], ideal[columns]])
    return {f"batch{batch_size}": group.drop(columns="batch_size")
            .sort_values(["series", "sparsity_percent"], kind="stable").reset_index(drop=True)
            for batch_size, group in table.groupby("batch_size")}


def headline_speedups(rows: pd.DataFrame, batch_size: int) -> dict[str, dict[str, float]]:
    """Picks each recipe's fastest speed-up at the headline pruned cases and one batch size.

    Args:
        rows: Benchmark rows of several recipes, with a ``recipe`` column.
        batch_size: The batch size to report.

    Returns:
        Per recipe, per headline name (``weight_k90`` ...; cases not measured left out), the
        fastest plan's speed-up over the masked dense network, to 2 decimals.
    """
    fastest = rows[(rows["is_fastest"].astype(str).str.lower() == "true")
                   & (rows["batch_size"] == batch_size)]
    speedups: dict[str, dict[str, float]] = {}
    for recipe in rows["recipe"].unique():
        speedups[recipe] = {}
        for name, method, percent in HEADLINE[1:]:
            chosen = fastest[(fastest["recipe"] == recipe) & (fastest["method"] == method)
                             & (fastest["k"] == percent)]
            if len(chosen):
                speedups[recipe][name] = round(float(chosen["speedup_vs_dense"].iloc[0]), 2)
    return speedups


def recipe_table(aggregated: pd.DataFrame, speedups: dict[str, dict[str, float]]
                 ) -> pd.DataFrame:
    """Lays out, per recipe, the headline accuracies (mean, std, min, max) and speed-ups.

    Args:
        aggregated: The output of :func:`aggregate_seeds`.
        speedups: Per recipe and headline name, a speed-up (:func:`headline_speedups`).

    Returns:
        One row per recipe: ``<name>_mean``, ``_std``, ``_min``, ``_max`` (percent) for each
        :data:`HEADLINE` name and ``<name>_speedup`` for each pruned one measured.
    """
    magnitude = aggregated[(aggregated["control"] == "magnitude")
                           & (aggregated["scope"] == "all")]
    rows = []
    for recipe in aggregated["recipe"].unique():
        row: dict = {"recipe": recipe}
        for name, method, percent in HEADLINE:
            chosen = magnitude[(magnitude["recipe"] == recipe) & (magnitude["method"] == method)
                               & (magnitude["k"] == percent)]
            for statistic in ("mean", "std", "min", "max"):
                row[f"{name}_{statistic}"] = (round(100 * float(chosen[f"accuracy_{statistic}"]
                                                                .iloc[0]), 2)
                                              if len(chosen) else None)
        row.update({f"{name}_speedup": value
                    for name, value in speedups.get(recipe, {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)
