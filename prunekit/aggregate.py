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
