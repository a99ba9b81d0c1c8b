"""Statistics over seeds on a hand-made results table."""

import math

import pandas as pd
import pytest

from prunekit import aggregate

# The cases metrics/ reports with the repository's params.yaml (summarize section).
ACCURACY_CASES = {"weight": [90, 95], "unit": [50, 70]}
HEADLINE = aggregate.headline_cases(ACCURACY_CASES)


def _results():
    rows = []
    for seed, (dense, w90, u50) in enumerate([(0.90, 0.50, 0.80), (0.88, 0.70, 0.86),
                                              (0.89, 0.60, 0.83)]):
        for method, k, accuracy in [("weight", 0, dense), ("weight", 90, w90),
                                    ("unit", 0, dense), ("unit", 50, u50)]:
            # Of 1000 weights: weight k90 keeps 100 scattered, unit k50 a 400-weight network.
            kept = {("weight", 0): 1000, ("weight", 90): 100, ("unit", 0): 1000,
                    ("unit", 50): 400}[method, k]
            rows.append({"recipe": "adam", "seed": seed, "method": method,
                         "control": "magnitude", "scope": "all", "draw": 0, "k": k,
                         "sparsity": k / 100 - 0.001 * (k > 0), "accuracy": accuracy,
                         "validation_accuracy": accuracy + 0.02, "dead_units": seed,
                         "kept_weights": kept,
                         "compact_weights": 1000 if method == "weight" else kept})
        for draw, accuracy in enumerate([0.10, 0.20]):
            rows.append({"recipe": "adam", "seed": seed, "method": "weight", "control": "random",
                         "scope": "all", "draw": draw, "k": 90, "sparsity": 0.899,
                         "accuracy": accuracy + seed / 100, "dead_units": 0,
                         "kept_weights": 100 - seed, "compact_weights": 1000})
    rows.append({"recipe": "l1", "seed": 0, "method": "weight", "control": "magnitude",
                 "scope": "all", "draw": 0, "k": 90, "sparsity": 0.899, "accuracy": 0.88,
                 "dead_units": 7, "kept_weights": 90, "compact_weights": 900})
    return pd.DataFrame(rows)


def test_paired_differences_compare_variants_of_the_same_seed():
    table = aggregate.paired_differences(_results(), "adam").set_index(
        ["comparison", "recipe", "method", "k"])
    # Magnitude 50, 70, 60 against random draws' means 15, 16, 17 (points), seed by seed.
    control = table.loc[("magnitude - random", "adam", "weight", 90)]
    assert (control.mean_points, control.min_points, control.max_points) == pytest.approx(
        (44.0, 35.0, 54.0))
    assert (control.seeds, control.seeds_above_zero) == (3, 3)
    recipe = table.loc[("l1 - adam", "l1", "weight", 90)]  # l1 has seed 0 only: one pair.
    assert recipe.mean_points == pytest.approx(38.0) and recipe.seeds == 1
    assert ("global - weight", "adam", "global", 90) not in table.index  # No global rows.


def test_paired_markdown_rounds_each_chosen_row_once():
    table = aggregate.paired_differences(_results(), "adam")
    markdown = aggregate.paired_markdown(table, [("magnitude - random", "adam", "weight", 90)])
    assert markdown.splitlines()[2] == (
        "| magnitude − random | adam | weight k90 | +44.0 ± 9.5 | +35.0 to +54.0 | 3 of 3 |")


def test_k_markdown_lays_curves_side_by_side_a_row_per_k():
    aggregated = aggregate.aggregate_seeds(_results())
    magnitude = aggregate.accuracy_curves(aggregated, "weight")
    curves = {"adam": magnitude[(magnitude.recipe == "adam") & (magnitude.control == "magnitude")],
              "l1": magnitude[(magnitude.recipe == "l1") & (magnitude.control == "magnitude")]}
    assert aggregate.k_markdown(curves).splitlines() == [
        "| k | adam | l1 |", "|---:|---:|---:|", "| 0 | 89.0 ± 1.0 | – |",
        "| 90 | 60.0 ± 10.0 | 88.0 ± 0.0 |"]
    assert aggregate.k_markdown(curves, "dead_units").splitlines()[3] == "| 90 | 1 | 7 |"


def test_aggregate_gives_mean_std_min_max_over_seeds():
    table = aggregate.aggregate_seeds(_results()).set_index(aggregate.GROUP_KEYS)
    row = table.loc[("adam", "weight", "magnitude", "all", 90)]
    assert row.accuracy_mean == pytest.approx(0.60)
    assert row.accuracy_std == pytest.approx(0.10)  # Sample std of 0.5, 0.7, 0.6.
    assert (row.accuracy_min, row.accuracy_max) == pytest.approx((0.50, 0.70))
    assert row.validation_accuracy_mean == pytest.approx(0.62)
    assert row.sparsity == pytest.approx(0.899)
    assert row.dead_units == pytest.approx(1.0)
    assert (row.seeds, row.runs) == (3, 3)
    control = table.loc[("adam", "weight", "random", "all", 90)]
    assert (control.seeds, control.runs) == (3, 6)
    assert control.accuracy_mean == pytest.approx(0.16)
    single = table.loc[("l1", "weight", "magnitude", "all", 90)]
    assert single.accuracy_std == 0.0


def test_headline_cases_name_the_dense_network_then_each_case():
    assert HEADLINE == [("dense", "weight", 0), ("weight_k90", "weight", 90),
                        ("weight_k95", "weight", 95), ("unit_k50", "unit", 50),
                        ("unit_k70", "unit", 70)]
    assert aggregate.headline_cases({"unit": [97.5]}) == [("dense", "weight", 0),
                                                          ("unit_k97.5", "unit", 97.5)]


def test_headline_picks_magnitude_means_and_marks_missing_k():
    summary = aggregate.headline(aggregate.aggregate_seeds(_results()), HEADLINE)
    assert list(summary.index) == ["adam", "l1"]
    assert summary.loc["adam", "dense"] == pytest.approx(0.89)
    assert summary.loc["adam", "weight_k90"] == pytest.approx(0.60)
    assert summary.loc["adam", "unit_k50"] == pytest.approx(0.83)
    assert math.isnan(summary.loc["adam", "weight_k95"])
    assert summary.loc["l1", "weight_k90"] == pytest.approx(0.88)
    spread = aggregate.headline(aggregate.aggregate_seeds(_results()), HEADLINE, "max")
    assert spread.loc["adam", "weight_k90"] == pytest.approx(0.70)


def test_dead_units_lists_weight_pruning_by_magnitude_only():
    dead = aggregate.dead_units(aggregate.aggregate_seeds(_results()))
    assert list(dead.columns) == ["series", "recipe", "k", "sparsity", "dead_units"]
    assert dead[["recipe", "k"]].values.tolist() == [["adam", 0], ["adam", 90], ["l1", 90]]
    assert dead["series"].tolist() == dead["recipe"].tolist()
    assert dead["dead_units"].tolist() == pytest.approx([1.0, 1.0, 7.0])


def test_aggregate_names_missing_columns():
    with pytest.raises(ValueError, match=r"lack the columns \['recipe', 'seed'\]"):
        aggregate.aggregate_seeds(_results().drop(columns=["recipe", "seed"]))


def _benchmark_rows():
    columns = ["recipe", "method", "k", "batch_size", "plan", "speedup_vs_dense",
               "speedup_vs_fastest_dense", "is_fastest"]
    return pd.DataFrame([
        ("adam", "unit", 50, 256, "compact_dense", 2.0, 1.5, True),  # Listed before weight k90.
        ("adam", "unit", 50, 256, "masked_dense", 1.0, 0.75, False),
        ("adam", "weight", 90, 256, "masked_ort", 1.2, 1.0, False),
        ("adam", "weight", 90, 256, "kernel", 4.256, 3.547, True),
        ("adam", "weight", 90, 1, "mkl_csr", 2.347, 2.001, True),
        ("adam", "weight", 99, 256, "compact_csr", 9.0, 8.0, True),  # Not a headline case.
        ("l1", "weight", 95, 256, "kernel", 6.0, 5.0, True),
    ], columns=columns)


def test_headline_speedups_follow_the_headline_order_per_recipe():
    speedups = aggregate.headline_speedups(_benchmark_rows(), HEADLINE, 256)
    assert speedups == {"adam": {"weight_k90": 4.256, "unit_k50": 2.0}, "l1": {"weight_k95": 6.0}}
    assert list(speedups["adam"]) == ["weight_k90", "unit_k50"]
    assert aggregate.headline_speedups(_benchmark_rows(), HEADLINE, 8) == {"adam": {}, "l1": {}}


def test_benchmark_metrics_take_the_fastest_plan_of_each_case_and_batch():
    rows = _benchmark_rows()
    metrics = aggregate.benchmark_metrics(rows[rows["recipe"] == "adam"],
                                          {"weight": [90], "unit": [90]}, [1, 256])
    assert metrics == {
        "weight_k90_batch1": {"speedup_vs_dense": 2.35, "speedup_vs_fastest_dense": 2.0},
        "weight_k90_batch256": {"speedup_vs_dense": 4.26, "speedup_vs_fastest_dense": 3.55}}


def test_fastest_rows_refuse_text_flags():
    rows = _benchmark_rows()
    assert list(aggregate.fastest_rows(rows)["plan"]) == [
        "compact_dense", "kernel", "mkl_csr", "compact_csr", "kernel"]
    with pytest.raises(ValueError, match="is_fastest must be a bool column"):
        aggregate.fastest_rows(rows.astype({"is_fastest": str}))


def test_fastest_rows_of_the_dense_network_follow_fastest_dense_plan():
    rows = _benchmark_rows().assign(fastest_dense_plan=["masked_dense"] * 2 + ["masked_ort"] * 2
                                    + ["masked_dense"] * 3)  # Per case, as the benchmark marks it.
    assert list(aggregate.fastest_rows(rows, dense=True)["plan"]) == ["masked_dense",
                                                                       "masked_ort"]


def test_recipe_table_lays_out_percent_statistics_and_speedups():
    table = aggregate.recipe_table(aggregate.aggregate_seeds(_results()), HEADLINE,
                                   {"adam": {"weight_k90": 4.26}})
    adam = table.set_index("recipe").loc["adam"]
    assert (adam.weight_k90_mean, adam.weight_k90_std) == pytest.approx((60.0, 10.0))
    assert (adam.weight_k90_min, adam.weight_k90_max) == pytest.approx((50.0, 70.0))
    assert adam.dense_mean == pytest.approx(89.0)
    assert adam.weight_k90_speedup == 4.26
    assert table.set_index("recipe").loc["l1"].isna()["weight_k90_speedup"]


def test_budget_curves_put_every_method_on_the_weights_the_compact_network_keeps():
    curves = aggregate.budget_curves(aggregate.aggregate_seeds(_results()))
    chosen = curves.set_index(["recipe", "method", "control", "k"])
    assert chosen.loc[("adam", "unit", "magnitude", 50), "kept_percent"] == 40
    assert chosen.loc[("adam", "unit", "magnitude", 50), "compact_percent"] == 40
    assert chosen.loc[("adam", "weight", "magnitude", 90), "kept_percent"] == 10
    assert chosen.loc[("adam", "weight", "magnitude", 90), "compact_percent"] == 100
    assert chosen.loc[("adam", "weight", "random", 90), "kept_percent"] == pytest.approx(9.9)
    assert math.isnan(chosen.loc[("l1", "weight", "magnitude", 90), "kept_percent"])  # No k0.
    assert set(curves["series"]) == {"adam: weight", "adam: unit", "adam: weight random control",
                                     "l1: weight"}


def test_recipe_markdown_rounds_every_figure_one_way():
    table = aggregate.recipe_table(aggregate.aggregate_seeds(_results()), HEADLINE,
                                   {"adam": {"weight_k90": 5.55, "unit_k50": 2.04}})
    lines = aggregate.recipe_markdown(table, HEADLINE).splitlines()
    assert lines[0] == ("| recipe | dense | weight k90 | weight k95 | unit k50 | unit k70 | "
                        "speed-up weight k90 / weight k95 / unit k50 / unit k70 |")
    assert lines[2] == ("| adam | 89.00 ± 1.00 | 60.00 ± 10.00 | – | 83.00 ± 3.00 | – | "
                        "5.5× / – / 2.0× / – |")
    assert lines[3].startswith("| l1 | – | 88.00 ± 0.00 |")


def _run_rows():
    """Benchmark rows of one case in three runs: mkl_csr wins one, kernel has the best median."""
    return pd.DataFrame([
        {"run": run, "recipe": "adam", "method": "weight", "k": 90, "sparsity_percent": 89.0,
         "batch_size": 256, "plan": plan, "formats": "csr", "median_ms": milliseconds,
         "speedup_vs_dense": 10 / milliseconds, "speedup_vs_fastest_dense": 5 / milliseconds,
         "speedup_low": 4 / milliseconds, "speedup_high": 6 / milliseconds,
         "fastest_dense_plan": "masked_ort", "is_fastest": False}
        for plan, times in (("kernel", (1.0, 2.0, 1.25)), ("mkl_csr", (1.3, 1.0, 2.5)))
        for run, milliseconds in enumerate(times, start=1)])


def test_combining_runs_takes_medians_keeps_the_range_and_picks_the_fastest_again():
    combined = aggregate.combine_runs(_run_rows()).set_index("plan")
    assert combined.loc["kernel", "median_ms"] == 1.25
    assert combined.loc["kernel", "speedup_vs_dense"] == 8.0
    assert (combined.loc["kernel", "speedup_vs_dense_min"],
            combined.loc["kernel", "speedup_vs_dense_max"]) == (5.0, 10.0)
    # The runs' intervals from the rounds: their envelope.
    assert (combined.loc["kernel", "speedup_low"], combined.loc["kernel", "speedup_high"]) == (
        2.0, 6.0)
    assert combined["is_fastest"].to_dict() == {"kernel": True, "mkl_csr": False}
    assert (combined["runs"] == 3).all()


def test_speed_markdown_gives_median_and_range_of_the_fastest_plan():
    table = aggregate.speed_markdown(aggregate.combine_runs(_run_rows()), {"weight": [90]},
                                     [1, 256])
    assert table.splitlines()[2] == ("| weight k90 | 256 | kernel | 1.250 ms | 8.0× (5.0–10.0) | "
                                     "4.0× (2.5–5.0) (masked_ort) | 2.0–6.0× |")
    assert len(table.splitlines()) == 3  # Batch 1 was not measured.
