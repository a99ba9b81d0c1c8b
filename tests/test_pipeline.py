"""The real pipeline through `dvc repro` and `dvc exp run`, on tiny settings, in a git copy.

The tests run in order and share one workspace: each step builds on the state the last one left.
"""

import json
import os
import pathlib
import subprocess
import sys

import pandas
import pytest
import torch
import yaml
from conftest import REPO, TINY_PARAMS, make_workspace, needs_fashion_mnist

from prunekit.pruning import count_to_prune as count

pytestmark = [needs_fashion_mnist, pytest.mark.slow]
STAGES = ("download", "train", "prune", "evaluate", "benchmark", "plot")


# The README's command for comparing experiments on a 200-column terminal.
EXP_TABLE = ("exp", "show", "--only-changed", "--keep", "dense|weight_k|unit_k", "--drop",
             "Created|speedup|file_size|.*/")


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
    return [stage for stage in STAGES if f"Running stage '{stage}'" in result.stdout]


def stages_restored(result):
    return [stage for stage in STAGES
            if f"Stage '{stage}' is cached - skipping run, checking out outputs" in result.stdout]


def read_json(workspace, name):
    return json.loads((workspace / name).read_text())


def locked_md5(workspace, stage, path):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)


def commit_all(workspace, message):
    run(workspace, "git", "add", "-A")
    run(workspace, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit",
        "-qm", message)


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
    result = dvc(workspace, "repro")
    assert stages_run(result) == list(STAGES)
    state = torch.load(workspace / "models/dense.pt", weights_only=True)
    assert [tuple(weight.shape) for weight in state.values()] == [(32, 784), (16, 32), (10, 16)]
    assert sorted(path.name for path in (workspace / "models/pruned").iterdir()) == [
        f"{method}_k{k}.pt" for method in ("unit", "weight") for k in (0, 50, 90)]
    table = pandas.read_csv(workspace / "plots/evaluate/accuracy.csv")
    assert list(table.columns) == ["series", "method", "k", "sparsity_percent",
                                   "accuracy_percent"]
    assert list(table["series"]) == ["weight pruning"] * 3 + ["unit pruning"] * 3
    # Zeros over all weights (the unpruned final 10x16 matrix included), counted exactly.
    total = 32 * 784 + 16 * 32 + 10 * 16
    expected_sparsity_k90 = {
        "weight": (count(90, 32 * 784) + count(90, 16 * 32)) / total,
        "unit": (count(90, 32) * 784 + count(90, 16) * 32) / total,
    }
    log = read_json(workspace, "logs/evaluate.json")
    assert log["provenance"]["dataset"] == "fashion-mnist"
    for method in ("weight", "unit"):
        rows = table[table["method"] == method]
        assert list(rows["k"]) == [0, 50, 90]
        assert rows["sparsity_percent"].iloc[0] == 0
        assert rows["sparsity_percent"].iloc[2] == round(100 * expected_sparsity_k90[method], 4)
        assert rows["accuracy_percent"].between(0, 100).all()
        assert log["results"][method]["k0"]["accuracy"] == log["results"]["dense"]["accuracy"]
    headline = read_json(workspace, "metrics/accuracy.json")
    assert headline == {"dense": log["results"]["dense"]["accuracy"],  # Only k measured.
                        "weight_k90": log["results"]["weight"]["k90"]["accuracy"],
                        "unit_k50": log["results"]["unit"]["k50"]["accuracy"]}
    train_log = read_json(workspace, "logs/train.json")
    assert train_log["train_samples"] == 1000 and len(train_log["epoch_seconds"]) == 1
    history = (workspace / "plots/train/history.csv").read_text().splitlines()
    assert history[0] == "epoch,split,accuracy_percent,loss" and len(history) == 3
    assert read_json(workspace, "logs/benchmark.json")["provenance"]["num_threads"] == 2
    assert set(read_json(workspace, "metrics/benchmark.json")) == {"speedup",
                                                                   "file_size_vs_dense"}
    for png in ("sparsity_accuracy.png", "training.png", "speedup.png"):
        assert (workspace / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    commit_all(workspace, "results of the tiny pipeline")


def test_second_repro_does_nothing(workspace):
    assert stages_run(dvc(workspace, "repro")) == []


def test_metrics_are_few_and_lead_with_the_headline_accuracies(workspace):
    shown = json.loads(dvc(workspace, "metrics", "show", "--json").stdout)
    by_file = shown[""]["data"] if "" in shown else shown["workspace"]["data"]
    files_shown = {path: entry["data"] for path, entry in by_file.items()}
    assert list(files_shown) == ["metrics/accuracy.json", "metrics/benchmark.json"]
    assert sum(metric_values(data) for data in files_shown.values()) <= 60
    header = dvc(workspace, "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    first_metrics = header[header.index("dense"):][:3]
    assert first_metrics == ["dense", "weight_k90", "unit_k50"]
    assert "Created" in header[:header.index("dense")]  # Nothing else comes before them.
    dvc(workspace, "plots", "show", "-o", "rendered")
    html = (workspace / "rendered" / "index.html").read_text()
    assert "weight pruning" in html and "unit pruning" in html  # Legends name the methods.


def test_changing_k_list_reruns_prune_and_later_but_not_train(workspace):
    result = dvc(workspace, "exp", "run", "-S", "prune.k_list=[0,90]")
    assert stages_run(result) == ["prune", "evaluate", "benchmark", "plot"]
    table = pandas.read_csv(workspace / "plots/evaluate/accuracy.csv")
    assert list(table["k"]) == [0, 90, 0, 90]
    assert "prune.k_list" in dvc(workspace, "params", "diff").stdout
    experiments = dvc(workspace, "exp", "show", "--csv").stdout
    assert "k_list" in experiments.splitlines()[0] and '"[0, 90]"' in experiments


def test_the_readme_experiment_table_fits_200_columns(workspace):
    command = "dvc " + " ".join(f"'{word}'" if "|" in word else word for word in EXP_TABLE)
    assert command in (REPO / "README.md").read_text()
    table = dvc(workspace, *EXP_TABLE, "--no-pager", columns=200).stdout
    header = table.splitlines()[1].split()
    assert header[:5] == ["Experiment", "dense", "weight_k90", "unit_k50", "prune.k_list"]
    assert "…" not in table and len(table.splitlines()) >= 6  # Workspace, main and one exp.


def test_changing_a_plot_setting_reruns_only_plot(workspace):
    result = dvc(workspace, "exp", "run", "-S", "plot.dpi=50")
    assert stages_run(result) == ["plot"]


def test_run_cache_restores_earlier_params_without_running(workspace):
    seed0_model = locked_md5(workspace, "train", "models/dense.pt")
    baseline = ("-S", "prune.k_list=[0,50,90]", "-S", "plot.dpi=40")
    other = dvc(workspace, "exp", "run", "-S", "train.seed=1", *baseline)
    assert stages_run(other) == ["train", "prune", "evaluate", "benchmark", "plot"]
    again = dvc(workspace, "exp", "run", "-S", "train.seed=1")
    assert stages_run(again) == []  # The same params computed nothing.
    back = dvc(workspace, "exp", "run", "-S", "train.seed=0")
    assert stages_run(back) == []
    assert set(stages_restored(back)) >= {"train", "prune", "evaluate"}
    assert locked_md5(workspace, "train", "models/dense.pt") == seed0_model


def test_bad_param_fails_before_work_and_says_how_to_restore(workspace):
    dvc(workspace, "checkout", "--force")
    run(workspace, "git", "checkout", "--", ".")
    params_path = workspace / "params.yaml"
    good = params_path.read_text()
    kept = (workspace / "models/pruned/weight_k90.pt").read_bytes()
    params_path.write_text(good.replace("k_list:\n  - 0\n", "k_list:\n  - 150\n"))
    try:
        result = dvc(workspace, "repro", check=False)
    finally:
        params_path.write_text(good)
    output = result.stderr + result.stdout
    assert result.returncode != 0
    assert "prune.k_list: got [150, 50, 90]" in output
    assert "'dvc checkout prune' restores the last good ones" in output
    dvc(workspace, "checkout", "prune")
    assert (workspace / "models/pruned/weight_k90.pt").read_bytes() == kept


def test_forced_train_rerun_changes_only_its_log(workspace):
    dvc(workspace, "repro")
    commit_all(workspace, "before the forced rerun")
    result = dvc(workspace, "repro", "--force", "--single-item", "train")
    assert stages_run(result) == ["train"]
    assert run(workspace, "git", "status", "--porcelain").stdout.split() == ["M", "dvc.lock"]
    changed = [line for line in run(workspace, "git", "diff", "-U0", "dvc.lock").stdout
               .splitlines() if line.startswith(("+ ", "- ", "+  ", "-  "))]
    assert len(changed) == 4  # The md5 and size of logs/train.json, old and new.
    assert stages_run(dvc(workspace, "repro")) == []  # Nothing downstream changed.


def test_forced_rerun_reproduces_model_and_results_exactly(workspace):
    model_md5 = locked_md5(workspace, "train", "models/dense.pt")
    accuracy = (workspace / "plots/evaluate/accuracy.csv").read_text()
    result = dvc(workspace, "repro", "--force")
    assert stages_run(result) == list(STAGES)
    assert locked_md5(workspace, "train", "models/dense.pt") == model_md5
    assert (workspace / "plots/evaluate/accuracy.csv").read_text() == accuracy


def test_a_fresh_clone_pulls_the_results_from_a_remote(workspace, tmp_path):
    dvc(workspace, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    commit_all(workspace, "results and remote")
    dvc(workspace, "push")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(workspace), str(clone))
    dvc(clone, "pull")
    for path in ("models/dense.pt", "models/pruned/unit_k90.pt", "logs/train.json"):
        assert (clone / path).read_bytes() == (workspace / path).read_bytes()
    assert stages_run(dvc(clone, "repro")) == []
