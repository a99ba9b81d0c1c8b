"""The real pipeline through `dvc repro` and `dvc exp run`, on tiny settings, in a git copy.

Two recipes (adam, l1) and two seeds. The tests run in order and share one workspace: each step
builds on the state the last one left.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, TINY_PARAMS, make_workspace, needs_fashion_mnist
from dvc.repo import Repo

from prunekit.pruning import count_to_prune as count

pytestmark = [needs_fashion_mnist, pytest.mark.slow]
NETWORKS = [f"{recipe}-{seed}" for recipe in ("adam", "l1") for seed in (0, 1)]
ALL_STAGES = ["check_params", "download", *[f"train@{name}" for name in NETWORKS],
              *[f"evaluate@{name}" for name in NETWORKS], "prune@adam", "prune@l1",
              "benchmark@adam", "benchmark@l1", "summarize", "plot"]

# The README's command for comparing experiments on a 200-column terminal.
EXP_TABLE = ("exp", "show", "--only-changed", "--keep", r"^adam\.", "--drop",
             r"Created|.*/|.*_batch\d|(?!adam\.)\w+\.(dense|\w+_k)")


def run(workspace, *command, check=True, columns=None):
    """Runs a command in the workspace with this interpreter's folder first on PATH."""
    bin_folder = pathlib.Path(sys.executable).parent
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(workspace, *args, check=True, columns=None):
    return run(workspace, sys.executable, "-m", "dvc", *args, check=check, columns=columns)


def stages_run(result):
    return sorted(re.findall(r"Running stage '([^']+)'", result.stdout))


def stages_restored(result):
    return sorted(re.findall(r"Stage '([^']+)' is cached - skipping run", result.stdout))


def read_json(workspace, name):
    return json.loads((workspace / name).read_text())


def locked_md5(workspace, stage, path):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)


def repro_with_params(workspace, old, new, *targets):
    """Runs ``dvc repro`` with ``old`` replaced by ``new`` in params.yaml, then restores it."""
    params_path = workspace / "params.yaml"
    good = params_path.read_text()
    assert old in good
    params_path.write_text(good.replace(old, new, 1))
    try:
        result = dvc(workspace, "repro", *targets, check=False)
    finally:
        params_path.write_text(good)
    return result, result.stderr + result.stdout


def commit_all(workspace, message):
    run(workspace, "git", "add", "-A")
    run(workspace, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit",
        "--allow-empty", "-qm", message)


def metric_values(data):
    """Counts the numbers in a parsed metrics file."""
    if isinstance(data, dict):
        return sum(metric_values(value) for value in data.values())
    return 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = make_workspace(tmp_path_factory.mktemp("pipeline"), TINY_PARAMS)
    run(folder, "git", "init", "-q")
    commit_all(folder, "pipeline under test")
    return folder


def test_repro_builds_every_output(workspace):
    assert stages_run(dvc(workspace, "repro")) == sorted(ALL_STAGES)
    state = torch.load(workspace / "models/l1/seed1/dense.pt", weights_only=True)
    assert [tuple(weight.shape) for weight in state.values()] == [(32, 784), (16, 32), (10, 16)]
    for recipe in ("adam", "l1"):
        assert sorted(path.name for path in (workspace / f"models/{recipe}/pruned").iterdir()) == [
            *[f"{method}_k{k}.pt" for method in ("global", "unit", "weight")
                                for k in (0, 50, 90)]]
    # Zeros over all weights (the unpruned final 10x16 matrix included), counted exactly.
    total = 32 * 784 + 16 * 32 + 10 * 16
    expected_sparsity_k90 = {
        "weight": (count(90, 32 * 784) + count(90, 16 * 32)) / total,
        "unit": (count(90, 32) * 784 + count(90, 16) * 32) / total,
        "global": count(90, 32 * 784 + 16 * 32) / total,
    }
    evaluations = {name: read_json(workspace, f"results/{name.replace('-', '/seed')}/"
                                   "evaluate.json") for name in NETWORKS}
    for evaluation in evaluations.values():
        assert list(evaluation) == ["dense", "weight", "unit", "global"]
        for method in ("weight", "unit", "global"):
            assert list(evaluation[method]) == ["k0", "k50", "k90"]
            assert evaluation[method]["k0"] == {"k": 0, **evaluation["dense"], "sparsity": 0.0}
            assert evaluation[method]["k90"]["sparsity"] == pytest.approx(
                expected_sparsity_k90[method], abs=1e-12)
    headline = read_json(workspace, "metrics/accuracy.json")
    for recipe in ("adam", "l1"):
        seeds = [evaluations[f"{recipe}-{seed}"] for seed in (0, 1)]
        assert headline[recipe] == pytest.approx({  # Means over seeds; only k measured.
            "dense": sum(seed["dense"]["accuracy"] for seed in seeds) / 2,
            "weight_k90": sum(seed["weight"]["k90"]["accuracy"] for seed in seeds) / 2,
            "unit_k50": sum(seed["unit"]["k50"]["accuracy"] for seed in seeds) / 2}, abs=1e-4)
    curves = pd.read_csv(workspace / "plots/accuracy/weight.csv")
    assert set(curves["series"]) == {"adam", "adam: random control", "l1",
                                     "l1: random control"}
    assert (curves["seeds"] == 2).all()
    layers = pd.read_csv(workspace / "plots/layers/unit.csv")
    assert set(layers["series"]) == {"only W1 pruned", "only W2 pruned", "all prunable matrices"}
    assert set(layers["recipe"]) == {"adam"}  # The reference recipe.
    assert not (workspace / "plots/layers/global.csv").exists()  # No matrix is pruned alone.
    budget = pd.read_csv(workspace / "plots/budget.csv")
    assert {"adam: weight", "adam: unit", "adam: global", "l1: unit random control"} <= set(
        budget["series"])
    removed = pd.read_csv(workspace / "plots/weights/l1_removed.csv")
    assert set(removed["quantity"]) == {"l1_removed_weight", "l1_removed_unit",
                                        "l1_removed_global"}
    train_log = read_json(workspace, "logs/train/l1/seed0.json")
    assert train_log["train_samples"] == 1000
    samples, floors = train_log["matmul_samples_seconds"], train_log["epoch_matmul_seconds"]
    assert len(samples) == len(floors) + 1 == len(train_log["epoch_seconds"]) + 1
    brackets = zip(samples[:-1], samples[1:], strict=True)  # The samples around each epoch.
    assert floors == pytest.approx([(before + after) / 2 for before, after in brackets],
                                   abs=1.5e-3)
    assert read_json(workspace, "logs/benchmark/adam.json")["provenance"]["num_threads"] == 2
    speedups = read_json(workspace, "metrics/benchmark.json")  # The reference recipe's.
    assert set(speedups) == {f"{method}_k90_batch{batch}" for method in ("weight", "unit")
                             for batch in (1, 256)}
    summary = pd.read_csv(workspace / "plots/summary.csv").set_index("recipe")
    assert list(summary.index) == ["adam", "l1"]
    assert summary.loc["l1", "weight_k90_speedup"] > 0 and "unit_k50_speedup" in summary
    charts = sorted(path.name for path in (workspace / "plots/charts").iterdir())
    assert charts == ["budget.png", "layers_unit.png", "layers_weight.png", "recipes.png",
                      "sparsity_accuracy.png", "speedup.png", "training.png", "weights.png"]
    for chart in charts:
        assert (workspace / "plots/charts" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    commit_all(workspace, "results of the tiny pipeline")


def test_second_repro_does_nothing(workspace):
    assert stages_run(dvc(workspace, "repro")) == []


# Per module: the stages whose deps it is; what reads their outputs reruns only if they change.
RERUN_BY_EDITING = {
    "prunekit/model.py": {"train", "evaluate", "prune", "benchmark"},
    "prunekit/training.py": {"train"},
    "prunekit/pruning.py": {"evaluate", "prune", "benchmark"},
    "prunekit/compact.py": {"evaluate", "prune", "benchmark"},
    "prunekit/evaluation.py": {"evaluate"},
    "prunekit/inference/plans.py": {"prune", "benchmark"},
    "prunekit/inference/engines.py": {"prune", "benchmark"},
    "prunekit/inference/kernel.py": {"prune", "benchmark"},
    "prunekit/inference/kernel.c": {"benchmark"},
    "prunekit/inference/timing.py": {"benchmark"},
    "prunekit/inference/benchmarking.py": {"benchmark"},
    "prunekit/inference/serving.py": set(),  # Users' code only.
    "prunekit/aggregate.py": {"summarize", "plot"},
    "prunekit/plotting.py": {"plot"},
}


@pytest.mark.parametrize(("module", "stages"), RERUN_BY_EDITING.items())
def test_editing_a_module_changes_only_the_stages_that_run_it(workspace, monkeypatch, module,
                                                              stages):
    monkeypatch.chdir(workspace)  # DVC names paths relative to the working directory.
    path = workspace / module
    source = path.read_bytes()
    path.write_bytes(source + (b"\n/* edited */\n" if module.endswith(".c") else b"\n# edited\n"))
    try:
        with Repo(str(workspace)) as repo:  # In process: dvc status without its start-up.
            status = repo.status()
    finally:
        path.write_bytes(source)
    changed = {stage.partition("@")[0] for stage, reasons in status.items()
               for reason in reasons if isinstance(reason, dict)
               and module in reason.get("changed deps", {})}
    assert changed == stages, status


def test_metrics_are_few_and_lead_with_the_headline_accuracies(workspace):
    shown = json.loads(dvc(workspace, "metrics", "show", "--json").stdout)
    by_file = shown[""]["data"] if "" in shown else shown["workspace"]["data"]
    files_shown = {path: entry["data"] for path, entry in by_file.items()}
    assert list(files_shown) == ["metrics/accuracy.json", "metrics/benchmark.json"]
    assert sum(metric_values(data) for data in files_shown.values()) <= 60
    header = dvc(workspace, "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    assert header[header.index("Created") + 2:][:3] == ["adam.dense", "adam.weight_k90",
                                                        "adam.unit_k50"]
    dvc(workspace, "plots", "show", "-o", "rendered")
    html = (workspace / "rendered" / "index.html").read_text()
    assert "adam: random control" in html and "only W1 pruned" in html  # Named series.


def test_adding_a_seed_trains_only_that_seed(workspace):
    result = dvc(workspace, "exp", "run", "-S", "train.seeds=[0,1,2]")
    assert stages_run(result) == ["check_params", "evaluate@adam-2", "evaluate@l1-2", "plot",
                                  "summarize", "train@adam-2", "train@l1-2"]
    assert (pd.read_csv(workspace / "plots/accuracy/unit.csv")["seeds"] == 3).all()


def test_removing_a_seed_leaves_nothing_stale(workspace):
    params_path = workspace / "params.yaml"
    document = yaml.safe_load(params_path.read_text())
    document["train"]["seeds"] = [0, 1]
    params_path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = dvc(workspace, "repro")
    assert stages_run(result) == ["summarize"]  # plot finds its inputs in the run-cache.
    assert stages_restored(result) == ["check_params", "plot"]
    # The removed seed's network stays on disk; its results go, so that summarize's deps
    # (results/) are those of the configured networks and a clone with only them agrees.
    assert (workspace / "models/adam/seed2/dense.pt").is_file()
    assert not (workspace / "results/adam/seed2").exists()
    assert "removed results/adam/seed2" in result.stderr + result.stdout
    assert (pd.read_csv(workspace / "plots/accuracy/unit.csv")["seeds"] == 2).all()
    summary = pd.read_csv(workspace / "plots/summary.csv").set_index("recipe")
    assert summary.loc["adam", "dense_mean"] == pytest.approx(100 * sum(
        read_json(workspace, f"results/adam/seed{seed}/evaluate.json")["dense"]["accuracy"]
        for seed in (0, 1)) / 2, abs=0.01)


def test_a_fresh_clone_pulls_the_results_from_a_remote(workspace, tmp_path):
    # Seed 2, added and taken out again by the two tests before, left files no stage owns in
    # the workspace; they must change no stage's deps, or the clone would differ.
    assert (workspace / "models/adam/seed2/dense.pt").is_file()
    dvc(workspace, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    commit_all(workspace, "results and remote")
    dvc(workspace, "push")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(workspace), str(clone))
    dvc(clone, "pull")
    for path in ("models/adam/seed0/dense.pt", "models/l1/pruned/unit_k90.pt",
                 "logs/train/l1/seed1.json"):
        assert (clone / path).read_bytes() == (workspace / path).read_bytes()
    assert "up to date" in dvc(clone, "status").stdout
    assert stages_run(dvc(clone, "repro")) == []


def test_changing_k_list_reruns_pruning_but_not_training(workspace):
    result = dvc(workspace, "exp", "run", "-S", "prune.k_list=[0,90]", "-S",
                 "benchmark.k_list=[0,90]")
    assert not any(stage.startswith(("train", "download")) for stage in stages_run(result))
    assert "prune@l1" in stages_run(result) and "evaluate@adam-1" in stages_run(result)
    assert list(read_json(workspace, "results/adam/seed0/evaluate.json")["weight"]) == ["k0",
                                                                                        "k90"]
    assert "prune.k_list" in dvc(workspace, "params", "diff").stdout


def test_changing_a_plot_setting_reruns_only_plot(workspace):
    # check_params reads the whole file; its output is unchanged, so only plot follows it.
    assert stages_run(dvc(workspace, "exp", "run", "-S", "plot.dpi=50")) == ["check_params",
                                                                             "plot"]


def test_a_misspelled_key_stops_the_run_before_any_work(workspace):
    result, output = repro_with_params(workspace, "  epochs: 1\n", "  epochs: 1\n  epoch: 3\n")
    assert result.returncode != 0 and "Traceback" not in output
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in output
    assert stages_run(result) == ["check_params"]
    assert set(stages_run(dvc(workspace, "repro"))) <= {"check_params"}


def test_the_readme_experiment_table_fits_200_columns(workspace):
    command = "dvc " + " ".join(f"'{word}'" if set(word) & set("|^\\") else word
                                for word in EXP_TABLE)
    assert command in (REPO / "README.md").read_text()
    table = dvc(workspace, *EXP_TABLE, "--no-pager", columns=200).stdout
    header = table.splitlines()[1].split()
    assert header[:2] == ["Experiment", "adam.dense"], table
    assert "…" not in table, table  # No cell cut short; long headers may wrap.
    for column in ("adam.weight_k", "adam.unit_k", "prune.k", "plot.d"):  # Kept, or changed.
        assert column in table, table
    assert len(table.splitlines()) >= 8  # Workspace, main and the experiments.


def test_run_cache_restores_earlier_params_without_running(workspace):
    baseline = ("-S", "prune.k_list=[0,50,90]", "-S", "benchmark.k_list=[0,50,90]", "-S",
                "plot.dpi=40")
    l1_model = locked_md5(workspace, "train@l1-0", "models/l1/seed0/dense.pt")
    other = dvc(workspace, "exp", "run", "-S", "train.recipes.l1.l1=0.001", *baseline)
    assert {"train@l1-0", "train@l1-1"} <= set(stages_run(other))
    assert not any(stage.startswith("train@adam") for stage in stages_run(other))
    again = dvc(workspace, "exp", "run", "-S", "train.recipes.l1.l1=0.001")
    assert stages_run(again) == []  # The same params computed nothing.
    back = dvc(workspace, "exp", "run", "-S", "train.recipes.l1.l1=0.0001")
    assert stages_run(back) == []
    assert {"train@l1-0", "evaluate@l1-0", "prune@l1"} <= set(stages_restored(back))
    assert locked_md5(workspace, "train@l1-0", "models/l1/seed0/dense.pt") == l1_model


def test_bad_params_fail_before_work_and_say_how_to_restore(workspace):
    dvc(workspace, "checkout", "--force")
    run(workspace, "git", "checkout", "--", ".")
    sweep = workspace / "results/adam/seed0/sweep.csv"
    kept = sweep.read_bytes()
    result, output = repro_with_params(workspace, "k_list:\n  - 0\n", "k_list:\n  - 150\n",
                                       "evaluate@adam-0")
    assert result.returncode != 0 and "prune.k_list: got [150, 50, 90]" in output
    assert stages_run(result) == ["check_params"]  # Refused before the stage's outputs went.
    assert "'dvc checkout check_params' (from the DVC cache)" in output
    assert sweep.read_bytes() == kept
    result, output = repro_with_params(workspace, "l1: 0.0001", "l1: -1")
    assert result.returncode != 0 and "Traceback" not in output
    assert "train.recipes.l1.l1: got -1; allowed: a number >= 0 (0 is off)" in output
    assert "training l1" not in output  # Refused before loading data or training.


def test_a_failed_summarize_names_the_commands_that_restore_its_outputs(workspace):
    dvc(workspace, "checkout", "--force")
    run(workspace, "git", "checkout", "--", ".")
    metrics = (workspace / "metrics/accuracy.json").read_bytes()
    table = workspace / "results/adam/benchmark.csv"
    table.unlink()
    result = dvc(workspace, "repro", "--single-item", "summarize", check=False)
    output = result.stderr + result.stdout
    assert result.returncode != 0 and "results/adam/benchmark.csv not found" in output
    assert not (workspace / "metrics/accuracy.json").exists()  # DVC removed the outputs.
    commands = re.findall(r"'((?:git|dvc) checkout [^']+)'", output)
    assert [command.split()[0] for command in commands] == ["git", "dvc"], output
    for command in commands:
        run(workspace, *command.split())
    assert (workspace / "metrics/accuracy.json").read_bytes() == metrics
    assert (workspace / "logs/summarize.json").is_file()
    dvc(workspace, "checkout", "benchmark@adam")


def test_forced_rerun_of_training_and_evaluation_changes_only_their_logs(workspace):
    dvc(workspace, "checkout", "--force")
    assert stages_run(dvc(workspace, "repro")) == []
    commit_all(workspace, "before the forced rerun")
    result = dvc(workspace, "repro", "--force", "--single-item", "train@adam-0",
                 "evaluate@adam-0")
    assert stages_run(result) == ["evaluate@adam-0", "train@adam-0"]
    assert run(workspace, "git", "status", "--porcelain").stdout.split() == ["M", "dvc.lock"]
    before = yaml.safe_load(run(workspace, "git", "show", "HEAD:dvc.lock").stdout)["stages"]
    after = yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]
    assert before.keys() == after.keys()
    changed = [(stage, entry["path"]) for stage in before for kind in ("deps", "outs")
               for entry, new in zip(before[stage].get(kind, []), after[stage].get(kind, []),
                                     strict=True) if entry != new]
    # Only the logs' timings may differ; a fast tiny stage can even repeat them to the 0.1 s.
    logs = {"train@adam-0": "logs/train/adam/seed0.json",
            "evaluate@adam-0": "logs/evaluate/adam/seed0.json"}
    assert all(logs.get(stage) == path for stage, path in changed), changed
    assert all(before[stage].get("params") == after[stage].get("params") for stage in before)
    assert stages_run(dvc(workspace, "repro")) == []  # Nothing downstream changed.
