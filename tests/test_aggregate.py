"""Statistics over seeds on a hand-made results table."""

import math

import pandas as pd
import pytest

from prunekit import aggregate


def _results():
    rows = []
    for seed, (dense, w90, u50) in enumerate([(0.90, 0.50, 0.80), (0.88, 0.70, 0.86),
                                              (0.89, 0.60, 0.83)]):
        for method, k, accuracy in [("weight", 0, dense), ("weight", 90, w90),
                                    ("unit", 0, dense), ("unit", 50, u50)]:
            rows.append({"recipe": "adam", "seed": seed, "method": method,
                         "control": "magnitude", "scope": "all", "draw": 0, "k": k,
                         "sparsity": k / 100 - 0.001 * (k > 0), "accuracy": accuracy,
                         "dead_units": seed})
        for draw, accuracy in enumerate([0.10, 0.20]):
            rows.append({"recipe": "adam", "seed": seed, "method": "weight", "control": "random",
                         "scope": "all", "draw": draw, "k": 90, "sparsity": 0.899,
                         "accuracy": accuracy + seed / 100, "dead_units": 0})
    rows.append({"recipe": "l1", "seed": 0, "method": "weight", "control": "magnitude",
                 "scope": "all", "draw": 0, "k": 90, "sparsity": 0.899, "accuracy": 0.88,
                 "dead_units": 7})
    return pd.DataFrame(rows)


def test_aggregate_gives_mean_std_min_max_over_seeds():
    table = aggregate.aggregate_seeds(_results()).set_index(aggregate.GROUP_KEYS)
    row = table.loc[("adam", "weight", "magnitude", "all", 90)]
    assert row.accuracy_mean == pytest.approx(0.60)
    assert row.accuracy_std == pytest.approx(0.10)  # Sample std of 0.5, 0.7, 0.6.
    assert (row.accuracy_min, row.accuracy_max) == pytest.approx((0.50, 0.70))
    assert row.sparsity == pytest.approx(0.899)
    assert row.dead_units == pytest.approx(1.0)
    assert (row.seeds, row.runs) == (3, 3)
    control = table.loc[("adam", "weight", "random", "all", 90)]
    assert (control.seeds, control.runs) == (3, 6)
    assert control.accuracy_mean == pytest.approx(0.16)
    single = table.loc[("l1", "weight", "magnitude", "all", 90)]
    assert single.accuracy_std == 0.0


def test_headline_picks_magnitude_means_and_marks_missing_k():
    summary = aggregate.headline(aggregate.aggregate_seeds(_results()))
    assert list(summary.index) == ["adam", "l1"]
    assert summary.loc["adam", "dense"] == pytest.approx(0.89)
    assert summary.loc["adam", "weight_k90"] == pytest.approx(0.60)
    assert summary.loc["adam", "unit_k50"] == pytest.approx(0.83)
    assert math.isnan(summary.loc["adam", "weight_k95"])
    assert summary.loc["l1", "weight_k90"] == pytest.approx(0.88)


def test_aggregate_names_missing_columns():
    with pytest.raises(ValueError, match=r"lack the columns \['recipe', 'seed'\]"):
        aggregate.aggregate_seeds(_results().drop(columns=["recipe", "seed"]))
