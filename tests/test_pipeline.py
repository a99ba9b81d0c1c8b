"""The real pipeline through `dvc repro` and `dvc exp run`, on tiny settings, in a git copy.

The tests run in order and share one workspace: each step builds on the state the last one left.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import TINY_PARAMS, make_workspace, needs_fashion_mnist

from prunekit.pruning import count_to_prune as count

pytestmark = [needs_fashion_mnist, pytest.mark.slow]
STAGES = ("download", "train", "prune", "evaluate", "benchmark", "plot")


def run(workspace, *command, check=True):
    """Runs a command in the workspace with this interpreter's folder first on PATH."""
    bin_folder = pathlib.Path(sys.executable).parent
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(workspace, *args, check=True):
    return run(workspace, sys.executable, "-m", "dvc", *args, check=check)


def stages_run(result):
    return [stage for stage in STAGES if f"Running stage '{stage}'" in result.stdout]


def read_json(workspace, name):
    return json.loads((workspace / name).read_text())


def locked_md5(workspace, stage, path):
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = make_workspace(tmp_path_factory.mktemp("pipeline"), TINY_PARAMS)
    run(folder, "git", "init", "-q")
    run(folder, "git", "add", "-A")
    run(folder, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit",
        "-qm", "pipeline under test")
    return folder


def test_repro_builds_every_output(workspace):
    result = dvc(workspace, "repro")
    assert stages_run(result) == list(STAGES)
    state = torch.load(workspace / "models/dense.pt", weights_only=True)
    assert [tuple(weight.shape) for weight in state.values()] == [(32, 784), (16, 32), (10, 16)]
    assert sorted(path.name for path in (workspace / "models/pruned").iterdir()) == [
        f"{method}_k{k}.pt" for method in ("unit", "weight") for k in (0, 50, 90)]
    results = read_json(workspace, "metrics/evaluate.json")
    assert set(results) >= {"dense", "weight", "unit"}
    # Zeros over all weights (the unpruned final 10x16 matrix included), counted exactly.
    total = 32 * 784 + 16 * 32 + 10 * 16
    expected_sparsity_k90 = {
        "weight": (count(90, 32 * 784) + count(90, 16 * 32)) / total,
        "unit": (count(90, 32) * 784 + count(90, 16) * 32) / total,
    }
    for method in ("weight", "unit"):
        assert list(results[method]) == ["k0", "k50", "k90"]
        sparsities = [results[method][label]["sparsity"] for label in ("k0", "k50", "k90")]
        assert sparsities[0] == 0
        assert sparsities[2] == pytest.approx(expected_sparsity_k90[method], abs=1e-12)
        assert all(0 <= entry["accuracy"] <= 1 for entry in results[method].values())
        assert results[method]["k0"]["accuracy"] == results["dense"]["accuracy"]
        table = (workspace / f"plots/evaluate/{method}.csv").read_text().splitlines()
        assert table[0] == "k,sparsity_percent,accuracy_percent" and len(table) == 4
    assert results["provenance"]["dataset"] == "fashion-mnist"
    train = read_json(workspace, "metrics/train.json")
    assert train["epochs"] == 1 and train["train_samples"] == 1000
    assert read_json(workspace, "logs/benchmark.json")["provenance"]["num_threads"] == 2
    rows = (workspace / "plots/benchmark/all.csv").read_text().splitlines()
    assert len(rows) > 1 + 2 * 3 * 2  # A row per plan, (method, k) and batch size.
    for png in ("sparsity_accuracy.png", "training.png", "speedup.png"):
        assert (workspace / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_repro_does_nothing(workspace):
    assert stages_run(dvc(workspace, "repro")) == []


def test_dvc_reports_metrics_and_plots(workspace):
    assert "test_accuracy" in dvc(workspace, "metrics", "show").stdout
    dvc(workspace, "plots", "show", "-o", "rendered")
    assert (workspace / "rendered" / "index.html").is_file()


def test_changing_k_list_reruns_prune_and_later_but_not_train(workspace):
    result = dvc(workspace, "exp", "run", "-S", "prune.k_list=[0,90]")
    assert stages_run(result) == ["prune", "evaluate", "benchmark", "plot"]
    assert list(read_json(workspace, "metrics/evaluate.json")["weight"]) == ["k0", "k90"]
    assert "prune.k_list" in dvc(workspace, "params", "diff").stdout
    experiments = dvc(workspace, "exp", "show", "--csv").stdout
    assert "k_list" in experiments.splitlines()[0] and '"[0, 90]"' in experiments


def test_changing_a_plot_setting_reruns_only_plot(workspace):
    result = dvc(workspace, "exp", "run", "-S", "plot.dpi=50")
    assert stages_run(result) == ["plot"]


def test_bad_param_fails_before_work_and_keeps_outputs(workspace):
    params_path = workspace / "params.yaml"
    good = params_path.read_text()
    kept = {name: (workspace / name).read_bytes()
            for name in ("metrics/prune.json", "models/pruned/weight_k90.pt")}
    params_path.write_text(good.replace("k_list:\n  - 0\n", "k_list:\n  - 150\n"))
    try:
        result = dvc(workspace, "repro", check=False)
    finally:
        params_path.write_text(good)
    assert result.returncode != 0
    assert "prune.k_list: got [150, 90]" in result.stderr + result.stdout
    assert {name: (workspace / name).read_bytes() for name in kept} == kept


def test_forced_rerun_reproduces_model_and_metrics_exactly(workspace):
    model_md5 = locked_md5(workspace, "train", "models/dense.pt")
    evaluation = (workspace / "metrics/evaluate.json").read_text()
    result = dvc(workspace, "repro", "--force")
    assert stages_run(result) == list(STAGES)
    assert locked_md5(workspace, "train", "models/dense.pt") == model_md5
    assert (workspace / "metrics/evaluate.json").read_text() == evaluation
