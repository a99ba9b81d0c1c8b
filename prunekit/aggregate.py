"""Tables over seeds and recipes: accuracy spread per k, headline accuracies and speed-ups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from prunekit import names

GROUP_KEYS = ["recipe", "method", "control", "scope", "k"]
# A headline column: (name, method, k) of magnitude pruning of every prunable matrix.
Headline = tuple[str, str, float]


def case_pairs(cases: Mapping[str, Sequence[float]]) -> list[tuple[str, float]]:
    """Flattens ``{method: [k, ...]}`` into ``(method, k)`` pairs, in order."""
    return [(method, k) for method, k_list in cases.items() for k in k_list]


def headline_cases(cases: Mapping[str, Sequence[float]]) -> list[Headline]:
    """Names the dense network and each ``{method: [k, ...]}`` case: ``weight_k90``."""
    return [("dense", names.METHODS[0], 0), *[(f"{method}_{names.k_label(k)}", method, k)
                                               for method, k in case_pairs(cases)]]


def _magnitude_all(aggregated: pd.DataFrame) -> pd.DataFrame:
    return aggregated[(aggregated["control"] == "magnitude") & (aggregated["scope"] == "all")]


def fastest_rows(rows: pd.DataFrame, dense: bool = False) -> pd.DataFrame:
    """Keeps each case's fastest plan's benchmark row, as the benchmark marked it.

    The one place every reader of benchmark rows (metrics, charts, serving) picks the fastest
    plan. With ``dense``, each case's fastest plan of the full-size masked network instead.

    Raises:
        ValueError: If ``is_fastest`` is not boolean, e.g. text not parsed as a CSV table.
    """
    if dense:
        return rows[rows["plan"] == rows["fastest_dense_plan"]]
    if not pd.api.types.is_bool_dtype(rows["is_fastest"]):
        raise ValueError(f"is_fastest must be a bool column, got {rows['is_fastest'].dtype}; "
                         "read benchmark tables with files.read_table")
    return rows[rows["is_fastest"]]


# A benchmark case: one network (its recipe, method and k) at one batch size.
CASE = ["recipe", "method", "k", "sparsity_percent", "batch_size"]
SPEEDUPS = ("speedup_vs_dense", "speedup_vs_fastest_dense")


def combine_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """Reduces benchmark rows of several ``run``s to one row per case and plan.

    Timings and speed-ups become their median over the runs, with each speed-up's smallest
    and largest run beside it (``<speed-up>_min``, ``_max``), and the rounds' intervals their
    envelope (the lowest ``speedup_low``, the highest ``speedup_high``, where the rows have
    them); ``runs`` counts them. Each case's fastest plan is then the one of smallest median
    time, and its fastest dense plan the one the runs named most often. Rows without a ``run``
    column count as one run.
    """
    rows = rows if "run" in rows else rows.assign(run=1)
    case = [key for key in CASE if key in rows]
    keys = [*case, "plan"]
    numbers = [column for column in rows.select_dtypes("number").columns
               if column not in (*keys, "run")]
    envelope = {"speedup_low": "min", "speedup_high": "max"}
    combined = rows.groupby(keys, sort=False).agg(
        **{column: (column, envelope.get(column, "median")) for column in numbers},
        **{f"{speedup}_{end}": (speedup, end) for speedup in SPEEDUPS for end in ("min", "max")},
        runs=("run", "nunique"), formats=("formats", "first"),
        fastest_dense_plan=("fastest_dense_plan", lambda plans: plans.mode().iloc[0]),
    ).reset_index()
    smallest = combined.groupby(case, sort=False)["median_ms"].transform("min")
    return combined.assign(is_fastest=combined["median_ms"] == smallest)


def fastest_at(rows: pd.DataFrame, cases: Sequence[tuple[str, float]],
               batch_sizes: Sequence[int]) -> pd.DataFrame:
    """Picks the fastest plan's benchmark row of each measured (method, k) case and batch size."""
    fastest = fastest_rows(rows)
    wanted = pd.MultiIndex.from_tuples(cases, names=["method", "k"])
    in_cases = pd.MultiIndex.from_frame(fastest[["method", "k"]]).isin(wanted)
    return fastest[in_cases & fastest["batch_size"].isin(batch_sizes)]


def aggregate_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """Summarises the sweep rows of several networks (``recipe``, ``seed`` added) per group.

    One row per group of :data:`GROUP_KEYS`, in first-seen order; ``accuracy_std`` is the sample
    standard deviation (0 for a single run) and ``runs`` counts seeds times random draws. The
    ``accuracy`` statistics are on the test set; ``validation_accuracy_mean`` is added where
    the rows have a ``validation_accuracy``.

    Raises:
        ValueError: If a column the summary needs is missing.
    """
    missing = sorted({*GROUP_KEYS, "seed", "accuracy", "sparsity", "dead_units", "kept_weights",
                      "compact_weights"} - set(results.columns))
    if missing:
        raise ValueError(f"results lack the columns {missing}")
    table = results.groupby(GROUP_KEYS, sort=False).agg(
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        accuracy_min=("accuracy", "min"), accuracy_max=("accuracy", "max"),
        sparsity=("sparsity", "mean"), dead_units=("dead_units", "mean"),
        kept_weights=("kept_weights", "mean"), compact_weights=("compact_weights", "mean"),
        seeds=("seed", "nunique"), runs=("accuracy", "size"),
        **({"validation_accuracy_mean": ("validation_accuracy", "mean")}
           if "validation_accuracy" in results else {})).reset_index()
    table["accuracy_std"] = table["accuracy_std"].fillna(0.0)
    return table


PAIRED_COLUMNS = ["comparison", "recipe", "method", "k", "mean_points", "std_points",
                  "min_points", "max_points", "seeds", "seeds_above_zero"]


def paired_differences(results: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Differences of test accuracy between two variants of the same seed, over seeds.

    Networks of one seed share their initial weights and batch order whatever the recipe, so
    every contrast is paired by seed: per recipe, method and k (whole-network pruning),
    ``magnitude - random`` (the draws' mean), ``global - weight``, and ``<recipe> -
    <reference>``. Differences are in percentage points: mean, sample std (NaN for one seed),
    smallest, largest, and how many seeds are above zero.
    """
    rows = results[results["scope"] == "all"]
    per_seed = rows.groupby(["recipe", "method", "control", "k", "seed"], sort=False)[
        "accuracy"].mean() * 100  # A random control: the mean of its draws.
    magnitude = per_seed.xs("magnitude", level="control")
    contrasts = [("magnitude - random",
                  (magnitude - per_seed.xs("random", level="control")).dropna())]
    methods = magnitude.index.get_level_values("method")
    if {"global", "weight"} <= set(methods):
        by_method = magnitude.unstack("method")
        contrasts.append(("global - weight", (by_method["global"] - by_method["weight"])
                          .dropna().to_frame("accuracy").assign(method="global")
                          .set_index("method", append=True)["accuracy"]))
    by_recipe = magnitude.unstack("recipe")
    contrasts += [(f"{recipe} - {reference}",
                   (by_recipe[recipe] - by_recipe[reference]).dropna().to_frame("accuracy")
                   .assign(recipe=recipe).set_index("recipe", append=True)["accuracy"])
                  for recipe in by_recipe.columns if recipe != reference]
    tables = []
    for name, differences in contrasts:
        frame = differences.rename("difference").reset_index()
        table = frame.groupby(["recipe", "method", "k"], sort=False)["difference"].agg(
            mean_points="mean", std_points="std", min_points="min", max_points="max",
            seeds="size", seeds_above_zero=lambda values: int((values > 0).sum()))
        tables.append(table.reset_index().assign(comparison=name))
    return pd.concat(tables, ignore_index=True)[PAIRED_COLUMNS].round(
        {"mean_points": 4, "std_points": 4, "min_points": 4, "max_points": 4})


def headline(aggregated: pd.DataFrame, cases: Sequence[Headline], statistic: str = "mean"
             ) -> pd.DataFrame:
    """Picks the accuracies of the :func:`headline_cases`, a row per recipe (NaN if unmeasured).

    ``statistic`` names the ``accuracy_<statistic>`` column read: mean, std, min or max.
    """
    magnitude = _magnitude_all(aggregated)
    recipes = pd.Index(aggregated["recipe"].unique(), name="recipe")
    columns = {}
    for name, method, k in cases:
        chosen = magnitude[(magnitude["method"] == method) & (magnitude["k"] == k)]
        columns[name] = chosen.set_index("recipe")[f"accuracy_{statistic}"].reindex(recipes)
    return pd.DataFrame(columns, index=recipes)


def dead_units(aggregated: pd.DataFrame) -> pd.DataFrame:
    """The dead hidden units weight pruning leaves per recipe and k, a chart series per recipe."""
    rows = _magnitude_all(aggregated)
    rows = rows[rows["method"] == "weight"]
    return rows.assign(series=rows["recipe"])[["series", "recipe", "k", "sparsity", "dead_units"]]


def percent_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Adds percent copies of the accuracy statistics and sparsity, for charts people read."""
    extra = {f"{column}_percent": (100 * table[column]).round(4)
             for column in ("accuracy_mean", "accuracy_std", "accuracy_min", "accuracy_max",
                            "validation_accuracy_mean", "sparsity") if column in table}
    return table.assign(**extra)


def accuracy_curves(aggregated: pd.DataFrame, method: str) -> pd.DataFrame:
    """Selects one method's whole-network curves, magnitude and random control, every recipe."""
    rows = aggregated[(aggregated["method"] == method) & (aggregated["scope"] == "all")]
    series = rows["recipe"].where(rows["control"] == "magnitude",
                                  rows["recipe"] + ": " + rows["control"] + " control")
    return percent_columns(rows.assign(series=series)[["series", *rows.columns]])


def budget_curves(aggregated: pd.DataFrame) -> pd.DataFrame:
    """Lays out accuracy against what the compact network keeps, every method and control.

    Methods are compared at matched budgets here, not at equal k: unit pruning at k also
    removes the next matrix's columns. ``kept_percent`` is the compact network's non-zero weights
    (a sparse pass's multiply-adds) and ``compact_percent`` its matrices' entries (a dense
    pass's), both in percent of the dense network's weights (its k = 0 row).
    """
    rows = aggregated[aggregated["scope"] == "all"]
    dense = rows[rows["k"] == 0].groupby("recipe")["compact_weights"].first()
    total = rows["recipe"].map(dense)
    series = rows["recipe"] + ": " + rows["method"].where(
        rows["control"] == "magnitude", rows["method"] + " random control")
    budget = rows.assign(series=series, kept_percent=(100 * rows["kept_weights"] / total).round(4),
                         compact_percent=(100 * rows["compact_weights"] / total).round(4))
    return percent_columns(budget[["series", *rows.columns, "kept_percent", "compact_percent"]])


def layer_curves(aggregated: pd.DataFrame, method: str, recipe: str) -> pd.DataFrame:
    """Selects one recipe's magnitude curves for one method: each matrix pruned alone, and all."""
    rows = aggregated[(aggregated["method"] == method) & (aggregated["recipe"] == recipe)
                      & (aggregated["control"] == "magnitude")]
    series = ("only " + rows["scope"] + " pruned").where(rows["scope"] != "all",
                                                        "all prunable matrices")
    return percent_columns(rows.assign(series=series)[["series", *rows.columns]])


def weight_statistics(statistics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Averages the networks' :func:`prunekit.evaluation.weight_statistics` over seeds.

    Returns:
        ``histograms`` (the |w| histograms and the share of exact zeros) and ``l1_removed``
        (the L1 mass each method removes at each k), per recipe and matrix, ``value`` the mean.
    """
    mean = statistics.groupby(["recipe", "layer", "quantity", "x"], sort=False).agg(
        value=("value", "mean"), seeds=("seed", "nunique")).reset_index()
    removed = mean["quantity"].str.startswith("l1_removed_")
    return {"histograms": mean[~removed].assign(series=mean["recipe"] + ": " + mean["layer"]),
            "l1_removed": mean[removed].assign(
                series=mean["recipe"] + ": " + mean["layer"] + ", "
                + mean["quantity"].str.removeprefix("l1_removed_"))}


def training_curves(history: pd.DataFrame) -> pd.DataFrame:
    """Summarises training histories of several networks (``recipe``, ``seed`` added) per epoch.

    Validation accuracy (the one epochs are chosen on) is summarised where the histories have it.
    """
    validation = "validation_accuracy" in history
    table = history.groupby(["recipe", "epoch"], sort=False).agg(
        train_loss_mean=("train_loss", "mean"), train_loss_min=("train_loss", "min"),
        train_loss_max=("train_loss", "max"), test_accuracy_mean=("test_accuracy", "mean"),
        test_accuracy_min=("test_accuracy", "min"),
        test_accuracy_max=("test_accuracy", "max"),
        **({"validation_accuracy_mean": ("validation_accuracy", "mean")} if validation else {})
    ).reset_index()
    return table.assign(series=table["recipe"],
                        test_accuracy_percent=(100 * table["test_accuracy_mean"]).round(4),
                        **({"validation_accuracy_percent":
                            (100 * table["validation_accuracy_mean"]).round(4)}
                           if validation else {}))


def fastest_speedups(rows: pd.DataFrame, reference: str) -> dict[str, pd.DataFrame]:
    """Lays out per ``batch<N>`` each case's fastest speed-up, and ``reference``'s ideal one.

    ``rows`` are benchmark rows (:data:`prunekit.benchmarking.ROW_KEYS`) with ``recipe`` added;
    the ideal speed-up is dense over non-zero multiply-adds.
    """
    fastest = fastest_rows(rows)
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


def headline_speedups(rows: pd.DataFrame, cases: Sequence[Headline], batch_size: int
                      ) -> dict[str, dict[str, float]]:
    """Picks each recipe's fastest speed-ups over masked dense at the pruned headline cases.

    To 4 decimals, as ``plots/benchmark/all.csv`` holds them, so that the README's table rounds
    the measured value once (a value first rounded to 2 decimals, 16.6521 to 16.65, would
    then read 16.6); a case not measured at ``batch_size`` is left out.
    """
    pruned = [case for case in cases if case[2] != 0]
    chosen = fastest_at(rows, [(method, k) for _, method, k in pruned], [batch_size])
    speedup = chosen.set_index(["recipe", "method", "k"])["speedup_vs_dense"]
    return {recipe: {name: round(float(speedup[recipe, method, k]), 4)
                     for name, method, k in pruned if (recipe, method, k) in speedup.index}
            for recipe in rows["recipe"].unique()}


def benchmark_metrics(rows: pd.DataFrame, cases: Mapping[str, Sequence[float]],
                      batch_sizes: Sequence[int]) -> dict[str, dict]:
    """Condenses one recipe's benchmark rows into the figures of metrics/benchmark.json.

    Returns:
        Per ``<method>_<k label>_batch<N>`` measured, sorted, the fastest plan's
        ``speedup_vs_dense`` and ``speedup_vs_fastest_dense``, to 2 decimals.
    """
    metrics = {}
    pairs = case_pairs(cases)
    for row in fastest_at(rows, pairs, batch_sizes).itertuples():
        key = f"{row.method}_{names.k_label(row.k)}_batch{row.batch_size}"
        metrics[key] = {"speedup_vs_dense": round(float(row.speedup_vs_dense), 2),
                        "speedup_vs_fastest_dense": round(float(row.speedup_vs_fastest_dense),
                                                          2)}
    return dict(sorted(metrics.items()))


def recipe_table(aggregated: pd.DataFrame, cases: Sequence[Headline],
                 speedups: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Lays out per recipe the headline accuracies and the speed-ups of :func:`headline_speedups`.

    Accuracies are percent to 2 decimals, as ``<name>_mean``, ``_std``, ``_min`` and ``_max``.
    """
    statistics = ("mean", "std", "min", "max")
    tables = {statistic: headline(aggregated, cases, statistic) for statistic in statistics}
    accuracies = pd.DataFrame({f"{name}_{statistic}": (100 * tables[statistic][name]).round(2)
                               for name, _, _ in cases for statistic in statistics})
    speeds = pd.DataFrame.from_dict(speedups, orient="index").add_suffix("_speedup")
    return accuracies.join(speeds).reset_index()


def recipe_markdown(table: pd.DataFrame, cases: Sequence[Headline]) -> str:
    """Writes :func:`recipe_table` as the README's Markdown table, its one rounding path.

    Accuracies as ``mean ± std`` in percent to 2 decimals, then the speed-ups of the pruned
    cases, ``×`` to 1 decimal; a value not measured is ``–``.
    """
    pruned = [name for name, _, k in cases if k != 0]

    def speedup(value: float | None) -> str:
        return "–" if value is None or pd.isna(value) else f"{value:.1f}×"

    def accuracy(mean: float, std: float) -> str:
        return "–" if pd.isna(mean) else f"{mean:.2f} ± {std:.2f}"

    header = ["recipe", *[name.replace("_", " ") for name, _, _ in cases],
              "speed-up " + " / ".join(name.replace("_k", " k") for name in pruned)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in table.to_dict("records"):
        accuracies = [accuracy(row[f"{name}_mean"], row[f"{name}_std"]) for name, _, _ in cases]
        speeds = " / ".join(speedup(row.get(f"{name}_speedup")) for name in pruned)
        lines.append("| " + " | ".join([row["recipe"], *accuracies, speeds]) + " |")
    return "\n".join(lines) + "\n"


def speed_markdown(rows: pd.DataFrame, cases: Mapping[str, Sequence[float]],
                   batch_sizes: Sequence[int]) -> str:
    """Writes the fastest plan of each case as the README's Markdown speed table.

    ``rows`` are one recipe's :func:`combine_runs` rows. Speed-ups are the median over the
    runs, ``×`` to 1 decimal, with the smallest and largest run in brackets where they differ;
    the speed-up over the fastest dense plan also with the envelope of the runs' 95 % intervals
    from the rounds.
    """
    pairs = case_pairs(cases)
    fastest = fastest_at(rows, pairs, batch_sizes)

    def speedup(row: dict, name: str) -> str:
        low, high = (f"{row[f'{name}_{end}']:.1f}" for end in ("min", "max"))
        spread = f" ({low}–{high})" if low != high else ""
        return f"{row[name]:.1f}×{spread}"

    lines = ["| case | batch | fastest plan | median | × torch dense | × fastest dense | "
             "95 % interval |", "|---|---:|---|---:|---:|---:|---:|"]
    for method, k in pairs:
        for batch_size in batch_sizes:
            chosen = fastest[(fastest["method"] == method) & (fastest["k"] == k)
                             & (fastest["batch_size"] == batch_size)].to_dict("records")
            for row in chosen:
                lines.append(f"| {method} {names.k_label(k)} | {batch_size} | {row['plan']} | "
                             f"{row['median_ms']:.3f} ms | {speedup(row, 'speedup_vs_dense')} | "
                             f"{speedup(row, 'speedup_vs_fastest_dense')} "
                             f"({row['fastest_dense_plan']}) | "
                             f"{row['speedup_low']:.1f}–{row['speedup_high']:.1f}× |")
    return "\n".join(lines) + "\n"


def paired_markdown(table: pd.DataFrame, rows: Sequence[tuple[str, str, str, float]]) -> str:
    """Writes chosen rows of :func:`paired_differences` as a Markdown table for the README.

    ``rows`` are ``(comparison, recipe, method, k)``. Points to 1 decimal: the mean difference
    ± its sample std over seeds, the smallest and largest seed's, and how many are above 0.
    """
    indexed = table.set_index(["comparison", "recipe", "method", "k"])
    lines = ["| comparison | recipe | pruned | difference (points) | seeds: range | above 0 |",
             "|---|---|---|---:|---:|---:|"]
    for comparison, recipe, method, k in rows:
        row = indexed.loc[(comparison, recipe, method, k)]
        lines.append(f"| {comparison.replace(' - ', ' − ')} | {recipe} | {method} "
                     f"{names.k_label(k)} | {row['mean_points']:+.1f} ± {row['std_points']:.1f} | "
                     f"{row['min_points']:+.1f} to {row['max_points']:+.1f} | "
                     f"{int(row['seeds_above_zero'])} of {int(row['seeds'])} |")
    return "\n".join(lines) + "\n"


def k_markdown(curves: Mapping[str, pd.DataFrame], value: str = "accuracy",
               decimals: int = 0) -> str:
    """Writes curves side by side as a Markdown table for the docs, a row per k of the first.

    Each curve (a table of this module's, one row per ``k``) becomes a column under its label:
    ``accuracy`` as percent ``mean ± std`` to 1 decimal, any other column as a number with
    ``decimals`` decimals; a k the curve lacks is ``–``.
    """
    lines = ["| k | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for k in next(iter(curves.values()))["k"]:
        cells = []
        for curve in curves.values():
            row = curve[curve["k"] == k].to_dict("records")
            if not row:
                cells.append("–")
            elif value == "accuracy":
                cells.append(f"{100 * row[0]['accuracy_mean']:.1f} ± "
                             f"{100 * row[0]['accuracy_std']:.1f}")
            else:
                cells.append(f"{row[0][value]:,.{decimals}f}")
        lines.append(f"| {k:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
