"""Tests of the timing loop (with a fake clock) and of the rows and summaries built from it."""

import gc
import runpy

import pytest
import torch
import yaml
from conftest import REPO

from prunekit import (
    benchmarking,
    compact,
    files,
    layout,
    model,
    plotting,
    pruning,
    sparse_inference,
)


class FakeClock:
    """A clock that only moves when a fake plan runs; it also records the order of calls."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        """Returns the fake time in seconds."""
        return self.now

    def plan(self, name: str, seconds: float):
        """Returns a fake plan that takes ``seconds`` of fake time."""

        def call() -> None:
            self.calls.append(name)
            self.now += seconds

        return call


def policy(**overrides) -> benchmarking.TimingPolicy:
    settings = {"min_repeats": 3, "min_seconds": 1e-6, "max_seconds": 10.0, "warmup_calls": 1}
    return benchmarking.TimingPolicy(**{**settings, **overrides})


def test_plans_are_warmed_up_then_interleaved_in_seeded_random_orders():
    clock = FakeClock()
    calls = {"a": clock.plan("a", 0.001), "b": clock.plan("b", 0.002), "c": clock.plan("c", 0.0005)}
    durations = benchmarking.time_interleaved(calls, policy(min_repeats=30), clock)
    assert clock.calls[:3] == ["a", "b", "c"]  # Warm-up.
    rounds = [tuple(clock.calls[start:start + 3]) for start in range(3, len(clock.calls), 3)]
    assert len(rounds) == 30 and all(sorted(order) == ["a", "b", "c"] for order in rounds)
    assert len(set(rounds)) > 3  # The order changes from round to round.
    assert durations["a"] == pytest.approx([0.001] * 30)
    assert durations["b"] == pytest.approx([0.002] * 30)
    again = FakeClock()
    benchmarking.time_interleaved({name: again.plan(name, 0.001) for name in "abc"},
                                  policy(min_repeats=30), again)
    assert again.calls == clock.calls  # Same seed, same orders.


def test_separate_warmups_run_before_timing_and_must_match_the_calls():
    clock = FakeClock()
    calls = {"a": clock.plan("a", 0.001)}
    durations = benchmarking.time_interleaved(calls, policy(warmup_calls=2), clock,
                                              warmups={"a": clock.plan("warm a", 0.5)})
    assert clock.calls == ["warm a", "warm a", "a", "a", "a"]
    assert durations["a"] == pytest.approx([0.001] * 3)  # Warm-up time is not counted.
    with pytest.raises(ValueError, match="warm-ups"):
        benchmarking.time_interleaved(calls, policy(), clock, warmups={"b": lambda: None})


def test_each_plan_runs_until_its_own_min_repeats_and_min_seconds():
    clock = FakeClock()
    calls = {"fast": clock.plan("fast", 0.001), "slow": clock.plan("slow", 0.010)}
    durations = benchmarking.time_interleaved(
        calls, policy(min_repeats=2, min_seconds=0.0195, warmup_calls=0), clock)
    assert len(durations["slow"]) == 2
    assert len(durations["fast"]) == 20
    assert sorted(clock.calls[:4]) == ["fast", "fast", "slow", "slow"]  # Interleaved.
    assert set(clock.calls[4:]) == {"fast"}


def test_slow_plans_stop_at_the_cap_after_capped_repeats():
    clock = FakeClock()
    calls = {"slow": clock.plan("slow", 0.5), "fast": clock.plan("fast", 0.01)}
    durations = benchmarking.time_interleaved(
        calls, policy(min_repeats=5, min_seconds=0.095, max_seconds=1.0), clock)
    assert len(durations["slow"]) == 3  # 1.0 s after two runs, but three are required.
    assert len(durations["fast"]) == 10  # Uncapped: 5 runs and 0.095 s.
    bounded = benchmarking.time_interleaved(
        {"quick": clock.plan("quick", 1e-9)}, policy(min_seconds=1.0, max_repeats=50), clock)
    assert len(bounded["quick"]) == 50


def test_garbage_collection_is_restored_and_bad_input_rejected():
    assert gc.isenabled()
    benchmarking.time_interleaved({"a": lambda: None}, policy())
    assert gc.isenabled()
    with pytest.raises(ValueError, match="empty"):
        benchmarking.time_interleaved({}, policy())
    with pytest.raises(ValueError, match="min_seconds"):
        policy(min_seconds=2.0, max_seconds=1.0)
    with pytest.raises(ValueError, match="min_repeats"):
        policy(min_repeats=0)


def test_summarize_reports_median_quartiles_and_extremes_in_milliseconds():
    summary = benchmarking.summarize([0.004, 0.001, 0.100, 0.003, 0.002])
    assert summary == pytest.approx({"median_ms": 3.0, "q1_ms": 2.0, "q3_ms": 4.0,
                                     "iqr_ms": 2.0, "min_ms": 1.0, "max_ms": 100.0,
                                     "repeats": 5})
    with pytest.raises(ValueError):
        benchmarking.summarize([])


def test_case_rows_compute_speedups_and_mark_one_fastest_plan():
    case = {"method": "weight", "k": 90, "sparsity_percent": 89.9, "batch_size": 256,
            "nonzero_ideal_speedup": 10.0}
    durations = {"masked_dense": [0.010, 0.012, 0.011], "compact_csr": [0.002, 0.002, 0.003]}
    rows = benchmarking.case_rows(case, durations, {"masked_dense": 1000, "compact_csr": 100},
                                  {"masked_dense": ("dense",), "compact_csr": ("csr",)})
    assert [tuple(row) for row in rows] == [benchmarking.ROW_KEYS] * 2
    baseline, sparse = rows
    assert baseline["speedup_vs_dense"] == 1.0 and baseline["ideal_speedup"] == 1.0
    assert sparse["speedup_vs_dense"] == pytest.approx(5.5)
    assert sparse["ideal_speedup"] == 10.0
    assert [row["is_fastest"] for row in rows] == [False, True]
    # When nothing beats the baseline, the baseline itself is the fastest plan (fall back).
    slower = benchmarking.case_rows(case, {"masked_dense": [0.01], "compact_csr": [0.02]},
                                    {"masked_dense": 1000, "compact_csr": 100},
                                    {"masked_dense": ("dense",), "compact_csr": ("csr",)})
    assert [row["is_fastest"] for row in slower] == [True, False]
    with pytest.raises(ValueError, match="baseline"):
        benchmarking.case_rows(case, {"compact_csr": [0.01]}, {"compact_csr": 1},
                               {"compact_csr": ("csr",)})
    with pytest.raises(ValueError, match="case lacks"):
        benchmarking.case_rows({"method": "weight"}, durations, {}, {})


def test_describe_case_of_a_hand_built_network():
    masked = [torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]),
              torch.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, -1.0]])]
    case = benchmarking.describe_case("weight", 50, masked, compact.compact(masked))
    # 10 of 18 weights are zero; the sparsest plan needs 3 hidden non-zeros + the 2x2 last.
    assert case == {"method": "weight", "k": 50, "sparsity_percent": 55.5556,
                    "nonzero_ideal_speedup": round(18 / 7, 4)}


@pytest.fixture(scope="module")
def tiny_rows() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    sizes = model.layer_sizes([16, 12])
    dense = [torch.randn(out_size, in_size, generator=generator)
             for in_size, out_size in zip(sizes[:-1], sizes[1:], strict=True)]
    timing = policy(min_repeats=2, min_seconds=1e-4, max_seconds=1e-3)
    rows = []
    with torch.inference_mode():
        for method in ("weight", "unit"):
            for percent in (0, 90):
                masked = pruning.prune(dense, method, percent)
                network = compact.compact(masked)
                plans = sparse_inference.build_plans(masked, network)
                case = benchmarking.describe_case(method, percent, masked, network)
                rows.extend(benchmarking.benchmark_network(plans, case, sizes[0], [1, 8],
                                                           timing))
    return rows


def test_benchmark_network_times_every_plan_at_every_batch_size(tiny_rows):
    assert all(tuple(row) == benchmarking.ROW_KEYS for row in tiny_rows)
    assert all(row["repeats"] >= 2 for row in tiny_rows)
    cases = {(row["method"], row["k"], row["batch_size"]) for row in tiny_rows}
    assert len(cases) == 2 * 2 * 2
    for case in cases:
        plans = [row for row in tiny_rows
                 if (row["method"], row["k"], row["batch_size"]) == case]
        assert sum(row["is_fastest"] for row in plans) == 1
        assert {"masked_dense", "compact_dense", "compact_hybrid"} <= {
            row["plan"] for row in plans}
    weight_k90 = [row for row in tiny_rows if row["method"] == "weight" and row["k"] == 90]
    assert {row["plan"] for row in weight_k90} == set(sparse_inference.PLAN_NAMES)


def test_summary_and_series_tables_have_the_expected_shape(tiny_rows):
    summary = benchmarking.summarize_rows(tiny_rows, headline_cases=[("unit", 90), ("unit", 50)],
                                          headline_batches=[8, 64])
    assert set(summary) == {"headline", "dense_median_ms", "fastest"}
    # Only measured cases and batch sizes: k50 and batch 64 were not.
    assert list(summary["headline"]) == ["batch8"]
    fastest_unit_k90 = summary["fastest"]["unit"]["k90"]["batch8"]
    assert summary["headline"]["batch8"] == {"unit_k90": fastest_unit_k90["speedup"]}
    assert set(summary["dense_median_ms"]) == {"batch1", "batch8"}
    assert set(summary["fastest"]) == {"weight", "unit"}
    assert set(summary["fastest"]["weight"]) == {"k0", "k90"}
    assert set(summary["fastest"]["weight"]["k90"]) == {"batch1", "batch8"}
    assert set(fastest_unit_k90) == {"plan", "speedup", "ideal_speedup"}

    tables = benchmarking.series_tables(tiny_rows)
    assert set(tables) == {"batch1", "batch8"}
    for table in tables.values():
        assert [(row["series"], row["k"]) for row in table] == [
            (f"{method}: {kind}", k) for method in ("unit", "weight")
            for kind in ("fastest plan", "ideal") for k in (0, 90)]
        assert list(table[0]) == ["series", "method", "k", "sparsity_percent", "speedup", "plan"]
    fastest_row = next(row for row in tiny_rows if row["is_fastest"] and row["batch_size"] == 8
                       and row["method"] == "unit" and row["k"] == 90)
    unit_k90 = [row for row in tables["batch8"] if row["method"] == "unit" and row["k"] == 90]
    assert [(row["plan"], row["speedup"]) for row in unit_k90] == [
        (fastest_row["plan"], fastest_row["speedup_vs_dense"]),
        ("ideal", fastest_row["nonzero_ideal_speedup"])]


def test_summaries_and_figure_accept_rows_read_back_from_csv(tiny_rows):
    as_text = [{key: str(value) for key, value in row.items()} for row in tiny_rows]
    summary = benchmarking.summarize_rows(as_text, headline_cases=[("weight", 90)],
                                          headline_batches=[1])
    assert summary == benchmarking.summarize_rows(tiny_rows, headline_cases=[("weight", 90)],
                                                  headline_batches=[1])
    assert len(benchmarking.series_tables(as_text)["batch8"]) == 8
    figure = plotting.speedup_figure(as_text)
    assert [axes.get_title() for axes in figure.axes] == ["batch 1", "batch 8"]
    assert all(axes.get_yscale() == "log" for axes in figure.axes)
    assert figure.legends and figure.get_suptitle()
    with pytest.raises(ValueError, match="no benchmark rows"):
        plotting.speedup_figure([])


def test_stage_writes_metrics_and_tables_for_a_tiny_network(tmp_path, monkeypatch):
    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    settings["train"]["hidden_sizes"] = [16, 12]
    settings["prune"] = {"k_list": [0, 90, 100], "methods": ["weight", "unit"]}
    settings["benchmark"] = {"batch_sizes": [1, 256], "min_seconds": 0.001, "min_repeats": 2,
                             "num_threads": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    generator = torch.Generator().manual_seed(0)
    sizes = model.layer_sizes([16, 12])
    dense = [torch.randn(out_size, in_size, generator=generator)
             for in_size, out_size in zip(sizes[:-1], sizes[1:], strict=True)]
    monkeypatch.chdir(tmp_path)
    layout.PRUNED_DIR.mkdir(parents=True)
    files.save_torch(layout.DENSE_MODEL, model.state_dict_from_weights(dense))
    for method in ("weight", "unit"):
        for percent in (0, 90, 100):
            compact.save_compact(layout.pruned_model(method, pruning.percent_label(percent)),
                                 compact.compact(pruning.prune(dense, method, percent)),
                                 method, percent)
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(REPO / "stages" / "benchmark.py"))["main"]()
    finally:
        torch.set_num_threads(threads)
    metrics = files.read_json(layout.BENCHMARK_METRICS)
    log = files.read_json(layout.stage_log("benchmark"))
    assert log["provenance"]["num_threads"] == 1
    assert log["provenance"]["torch_version"] == torch.__version__
    assert set(metrics) == {"speedup", "file_size_vs_dense"}
    assert set(metrics["speedup"]) == {"batch1", "batch256"}
    # The headline cases that were pruned (k95 and k99 were not).
    assert set(metrics["speedup"]["batch256"]) == {"weight_k90", "unit_k90"}
    assert set(log["fastest"]["weight"]["k90"]) == {"batch1", "batch256"}
    # Unit k100 removes whole layers: no multiply-add is left, the ideal speed-up is unbounded.
    assert log["fastest"]["unit"]["k100"]["batch256"]["ideal_speedup"] is None
    unit_k90_bytes = layout.pruned_model("unit", "k90").stat().st_size
    assert set(metrics["file_size_vs_dense"]) == {"weight_k90", "unit_k90"}
    assert metrics["file_size_vs_dense"]["unit_k90"] == round(
        unit_k90_bytes / layout.DENSE_MODEL.stat().st_size, 4)
    assert sorted(path.name for path in layout.BENCHMARK_TABLES.iterdir()) == ["all.csv",
                                                                               "speedup"]
    assert sorted(path.name for path in (layout.BENCHMARK_TABLES / "speedup").iterdir()) == [
        "batch1.csv", "batch256.csv"]
    rows = files.read_table(layout.BENCHMARK_TABLES / "all.csv")
    assert tuple(rows.columns) == benchmarking.ROW_KEYS
    assert len(rows) == 2 * sum(len(sparse_inference.build_plans(
        pruning.prune(dense, method, percent),
        compact.compact(pruning.prune(dense, method, percent))))
        for method in ("weight", "unit") for percent in (0, 90, 100))
