"""Tests of the benchmark rows, their summaries and the benchmark stage."""

import json
import runpy
import sys

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, mlp_shapes, write_dataset

from prunekit import aggregate, artifacts, compact, files, layout, model, plotting, pruning
from prunekit.inference import benchmarking, plans, timing

# The cases and batch sizes metrics/benchmark.json holds with the repository's params.yaml.
SPEEDUP_CASES = {"weight": [90, 95, 99], "unit": [90]}
SPEEDUP_BATCH_SIZES = (1, 256)


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
    assert sparse["fraction_of_ideal"] == pytest.approx(0.55)
    assert sparse["gflops"] == pytest.approx(2 * 100 * 256 / 0.002 / 1e9, abs=1e-4)
    assert [row["is_fastest"] for row in rows] == [False, True]
    # A faster dense engine becomes the second reference.
    with_ort = benchmarking.case_rows(
        case, {**durations, "masked_ort": [0.004, 0.005, 0.006]},
        {"masked_dense": 1000, "compact_csr": 100, "masked_ort": 1000},
        {"masked_dense": ("dense",), "compact_csr": ("csr",), "masked_ort": ("dense",)})
    assert {row["fastest_dense_plan"] for row in with_ort} == {"masked_ort"}
    assert [row["speedup_vs_fastest_dense"] for row in with_ort] == pytest.approx(
        [5 / 11, 2.5, 1.0], abs=1e-4)
    # When nothing beats the baseline, the baseline itself is the fastest plan (fall back).
    slower = benchmarking.case_rows(case, {"masked_dense": [0.01], "compact_csr": [0.02]},
                                    {"masked_dense": 1000, "compact_csr": 100},
                                    {"masked_dense": ("dense",), "compact_csr": ("csr",)})
    assert [row["is_fastest"] for row in slower] == [True, False]
    with pytest.raises(ValueError, match="baseline"):
        benchmarking.case_rows(case, {"compact_csr": [0.01]}, {"compact_csr": 1},
                               {"compact_csr": ("csr",)})
    # A shared reference (the unpruned network's dense plans, same rounds) is the divisor.
    shared = benchmarking.case_rows(case, {"compact_csr": [0.002, 0.004, 0.003]},
                                    {"compact_csr": 100, "masked_dense": 1000},
                                    {"compact_csr": ("csr",)},
                                    reference={"masked_dense": [0.010, 0.012, 0.012],
                                               "masked_ort": [0.008, 0.006, 0.009]})
    assert shared[0]["dense_ms"] == 12.0 and shared[0]["fastest_dense_ms"] == 8.0
    assert shared[0]["speedup_vs_fastest_dense"] == pytest.approx(8 / 3, abs=1e-4)
    assert (shared[0]["speedup_low"], shared[0]["speedup_high"]) == (1.5, 4.0)  # Per round.
    assert shared[0]["fraction_of_ideal"] == pytest.approx(8 / 3 / 10, abs=1e-4)
    with pytest.raises(ValueError, match="case lacks"):
        benchmarking.case_rows({"method": "weight"}, durations, {}, {})


@pytest.mark.parametrize("count, trimmed, coverage", [(1, 1, 0.0), (7, 1, 1 - 2 / 128),
                                                      (10, 2, 1 - 2 * 11 / 1024)])
def test_median_interval_trims_order_statistics_to_the_coverage(count, trimmed, coverage):
    values = [float(value) for value in range(count, 0, -1)]  # Unsorted on purpose.
    low, high, covered = benchmarking.median_interval(values)
    assert (low, high) == (trimmed, count + 1 - trimmed)
    assert covered == pytest.approx(coverage)


def test_describe_case_of_a_hand_built_network():
    masked = [torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]),
              torch.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, -1.0]])]
    case = benchmarking.describe_case("weight", 50, masked, compact.compact(masked))
    # 10 of 18 weights are zero; the sparsest plan needs 3 hidden non-zeros + the 2x2 last.
    assert case == {"method": "weight", "k": 50, "sparsity_percent": 55.5556,
                    "nonzero_ideal_speedup": round(18 / 7, 4)}


# Plans of a 784-16-12-10 network by case: all-CSR ones need sparse compact hidden matrices
# (weight k90; unit pruning leaves them dense); the kernel and MKL need non-empty ones (not
# k100), compact_csr does not.
DENSE_CASE_PLANS = {"masked_dense", "masked_ort", "masked_kernel", "compact_dense",
                    "compact_ort", "compact_kernel", "compact_hybrid", "kernel"}
EMPTY_CASE_PLANS = DENSE_CASE_PLANS - {"compact_kernel", "kernel"} | {"compact_csr"}
PLANS_BY_CASE = {("weight", 0): DENSE_CASE_PLANS, ("unit", 0): DENSE_CASE_PLANS,
                 ("weight", 90): set(plans.PLAN_NAMES),
                 ("unit", 90): DENSE_CASE_PLANS,
                 ("weight", 100): EMPTY_CASE_PLANS, ("unit", 100): EMPTY_CASE_PLANS}


@pytest.fixture(scope="module")
def tiny_rows(random_weights, random_images) -> list[dict]:
    dense = random_weights(mlp_shapes([16, 12]))
    images = random_images(5)  # Fewer than the largest batch: batch_of cycles through them.
    policy = timing.TimingPolicy(rounds=2, block_seconds=1e-4)
    networks = []
    with torch.inference_mode():
        for method in ("weight", "unit"):
            for percent in (0, 90):
                masked = pruning.prune(dense, method, percent)
                network = compact.compact(masked)
                networks.append((benchmarking.describe_case(method, percent, masked, network),
                                 plans.build_plans(masked, network, num_threads=1)))
        reference = {name: plan for name, plan in plans.build_plans(
            dense, compact.compact(dense), num_threads=1).items()
                     if name in (plans.BASELINE, *plans.DENSE_PLANS)}
        return benchmarking.benchmark_networks(networks, reference, images, [1, 8], policy)


def test_benchmark_networks_times_every_plan_at_every_batch_size(tiny_rows):
    assert all(tuple(row) == benchmarking.ROW_KEYS for row in tiny_rows)
    assert all(row["rounds"] == 2 and row["calls_per_block"] >= 1 for row in tiny_rows)
    for batch_size in (1, 8):  # Every case divides by the same reference, timed once.
        batch = [row for row in tiny_rows if row["batch_size"] == batch_size]
        assert len({(row["dense_ms"], row["fastest_dense_ms"]) for row in batch}) == 1
    assert all(row["speedup_low"] <= row["speedup_high"] for row in tiny_rows)
    cases = {(row["method"], row["k"], row["batch_size"]) for row in tiny_rows}
    assert len(cases) == 2 * 2 * 2
    for case in cases:
        case_rows = [row for row in tiny_rows
                     if (row["method"], row["k"], row["batch_size"]) == case]
        assert sum(row["is_fastest"] for row in case_rows) == 1
        assert sorted(row["plan"] for row in case_rows) == sorted(PLANS_BY_CASE[case[:2]])


def test_summary_and_speedup_tables_have_the_expected_shape(tiny_rows):
    rows = pd.DataFrame(tiny_rows)
    summary = aggregate.benchmark_metrics(rows, {"unit": [90, 50]}, [8])
    assert summary.keys() == {"unit_k90_batch8"}  # k50 was not measured.
    assert summary["unit_k90_batch8"].keys() == {"speedup_vs_dense", "speedup_vs_fastest_dense"}
    everything = aggregate.benchmark_metrics(rows, {"weight": [90], "unit": [90]}, [1, 8])
    assert len(everything) == 4
    assert all(isinstance(value, float) for entry in everything.values()
               for value in entry.values())

    tables = aggregate.fastest_speedups(pd.DataFrame(tiny_rows).assign(recipe="adam"), "adam")
    assert set(tables) == {"batch1", "batch8"}
    for table in tables.values():
        assert list(table.columns) == ["series", "recipe", "method", "k", "sparsity_percent",
                                       "speedup", "plan"]
        assert list(table["series"]) == [f"{name}" for name in (
            "adam: unit", "adam: unit", "adam: weight", "adam: weight", "unit: ideal",
            "unit: ideal", "weight: ideal", "weight: ideal")]
        assert list(table["k"]) == [0, 90] * 4  # Sorted by sparsity within each series.
    fastest = next(row for row in tiny_rows if row["is_fastest"] and row["batch_size"] == 8
                   and row["method"] == "unit" and row["k"] == 90)
    unit_k90 = tables["batch8"][(tables["batch8"]["method"] == "unit")
                                & (tables["batch8"]["k"] == 90)]
    assert list(unit_k90["plan"]) == [fastest["plan"], "ideal"]
    assert list(unit_k90["speedup"]) == [fastest["speedup_vs_dense"],
                                         fastest["nonzero_ideal_speedup"]]


def test_summaries_and_figure_accept_rows_read_back_from_csv(tiny_rows, tmp_path):
    files.write_csv(tmp_path / "rows.csv", tiny_rows)
    read_back = files.read_table(tmp_path / "rows.csv")
    summary = aggregate.benchmark_metrics(read_back, {"weight": [90]}, [1])
    assert summary == aggregate.benchmark_metrics(pd.DataFrame(tiny_rows), {"weight": [90]}, [1])
    figure = plotting.speedup_figure(read_back)
    assert [axes.get_title() for axes in figure.axes] == ["batch 1", "batch 8"]
    assert all(axes.get_yscale() == "log" for axes in figure.axes)
    assert figure.legends and figure.get_suptitle()
    with pytest.raises(ValueError, match="no benchmark rows"):
        plotting.speedup_figure(read_back.iloc[:0])


def test_stage_writes_rows_and_a_log_for_a_tiny_network(tmp_path, monkeypatch, random_weights,
                                                        tiny_datasets):
    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    settings["train"]["hidden_sizes"] = [16, 12]
    settings["prune"]["k_list"] = [0, 50, 90, 100]
    settings["benchmark"] = {"methods": ["weight", "unit"], "batch_sizes": [1, 256],
                             "k_list": [0, 90, 100], "rounds": 2, "block_seconds": 0.001,
                             "num_threads": 1, "runs": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    dense = random_weights(mlp_shapes([16, 12]))
    monkeypatch.chdir(tmp_path)
    write_dataset(layout.DATA_DIR, tiny_datasets["fashion-mnist"], gzipped=False)
    monkeypatch.setattr(sys, "argv", ["benchmark", "adam"])
    layout.pruned_dir("adam").mkdir(parents=True)
    layout.dense_model("adam", 0).parent.mkdir(parents=True)
    files.save_torch(layout.dense_model("adam", 0), model.state_dict_from_weights(dense))
    for method in ("weight", "unit"):
        for percent in (0, 90, 100):
            artifacts.save_compact(layout.pruned_model("adam", method, percent),
                                   compact.compact(pruning.prune(dense, method, percent)),
                                   method, percent)
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(REPO / "stages" / "benchmark.py"))["main"]()
    finally:
        torch.set_num_threads(threads)
    log = json.loads(layout.stage_log("benchmark", "adam").read_text())
    assert log["provenance"]["num_threads"] == 1
    assert log["provenance"]["torch_version"] == torch.__version__
    assert log["provenance"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert log["timing"]["rounds"] == 2
    rows = files.read_table(layout.benchmark_table("adam"))
    assert tuple(rows.columns) == ("run", *benchmarking.ROW_KEYS)
    assert sorted(set(rows["k"])) == [0, 90, 100]  # benchmark.k_list within prune.k_list.
    assert len(rows) == 2 * 2 * (8 + 10 + 7 + 8 + 8 + 7)  # 2 runs x 2 batch sizes x 6 cases.
    assert (rows.groupby("run").size() == len(rows) // 2).all()
    one_run = rows[rows["run"] == 1]
    for (method, percent, batch), names in one_run.groupby(["method", "k", "batch_size"])["plan"]:
        assert sorted(names) == sorted(PLANS_BY_CASE[method, percent]), (method, percent, batch)
    summary = aggregate.benchmark_metrics(one_run, SPEEDUP_CASES, SPEEDUP_BATCH_SIZES)
    assert set(summary) == {f"{method}_k90_batch{batch}" for method in ("weight", "unit")
                            for batch in (1, 256)}


def test_a_batch_cycles_through_fewer_images():
    images = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(benchmarking.batch_of(images, 2), images[:2])
    assert torch.equal(benchmarking.batch_of(images, 5)[3:], images[:2])
    with pytest.raises(ValueError, match="batch size >= 1"):
        benchmarking.batch_of(images, 0)


def test_every_timed_call_runs_the_same_first_images_and_rows_are_per_batch():
    images = torch.arange(100.0).unsqueeze(1)  # Image i is the one pixel i.
    seen, clock = [], {"seconds": 0.0}

    def forward(batch: torch.Tensor) -> torch.Tensor:
        seen.append(batch[:, 0].int().tolist())
        clock["seconds"] += 1.0  # Every batch takes one second of the fake clock.
        return batch

    plan = plans.Plan(plans.BASELINE, forward, 1, ("dense",))
    policy = timing.TimingPolicy(rounds=2, block_seconds=1.0)
    for batch_size, one_call in ((1, [[image] for image in range(64)]),
                                 (32, [list(range(32)), list(range(32, 64))]),
                                 (128, [[*range(100), *range(28)]])):
        seen.clear()
        rows = benchmarking.benchmark_networks(
            [({"method": "weight", "k": 0, "sparsity_percent": 0.0,
               "nonzero_ideal_speedup": 1.0}, {plans.BASELINE: plan})],
            {plans.BASELINE: plan}, images, [batch_size], policy,
            clock=lambda: clock["seconds"])
        # The plan stands for the reference and the case: two warm-ups on the first batch.
        assert seen[:2] == [one_call[0]] * 2
        calls = seen[2:]
        assert calls == one_call * (len(calls) // len(one_call))
        assert rows[0]["median_ms"] == 1000.0
        assert rows[0]["calls_per_block"] == len(one_call)
