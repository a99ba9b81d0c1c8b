"""Stages stop cleanly on bad input, failure and Ctrl-C, leaving the last good outputs intact."""

import contextlib
import os
import runpy
import signal
import subprocess
import sys

import pytest
from conftest import REPO, TINY_PARAMS, make_workspace, needs_fashion_mnist

from prunekit import files

pytestmark = needs_fashion_mnist


def run_stage(workspace, stage, *arguments, **kwargs):
    return subprocess.run([sys.executable, "-m", f"stages.{stage}", *arguments],
                          cwd=workspace, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace where download and a tiny train of adam seed 0 have run once."""
    workspace = make_workspace(tmp_path_factory.mktemp("stages"), TINY_PARAMS)
    assert run_stage(workspace, "download", check=True).returncode == 0
    assert run_stage(workspace, "train", "adam", "0", check=True).returncode == 0
    return workspace


def snapshot(workspace):
    outputs = ["models/adam/seed0/dense.pt", "results/adam/seed0/history.csv",
               "logs/train/adam/seed0.json"]
    return {name: (workspace / name).read_bytes() for name in outputs}


def leftovers(workspace):
    return [path for path in workspace.rglob(".*") if path.name.endswith(".tmp")
            or path.name.startswith((".dense", ".train", ".history", ".pruned"))]


@contextlib.contextmanager
def edited_params(workspace, old, new):
    """Replaces the first ``old`` in params.yaml by ``new`` for the duration of the block."""
    path = workspace / "params.yaml"
    original = path.read_text()
    assert old in original
    path.write_text(original.replace(old, new, 1))
    try:
        yield
    finally:
        path.write_text(original)


def test_bad_param_stops_before_any_work(trained):
    before = snapshot(trained)
    with edited_params(trained, "lr: 0.001", "lr: -1"):
        result = run_stage(trained, "train", "adam", "0")
    assert result.returncode != 0
    assert "train.recipes.adam.lr: got -1; allowed: a number > 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert "training adam" not in result.stderr  # Stopped before loading data or training.
    assert snapshot(trained) == before


def test_failure_while_writing_outputs_keeps_the_old_ones(trained, monkeypatch):
    before = snapshot(trained)
    monkeypatch.chdir(trained)
    monkeypatch.setattr(files, "write_json", _fail_disk_full)
    monkeypatch.setattr(sys, "argv", ["train", "adam", "0"])
    with pytest.raises(OSError, match="disk full"):
        runpy.run_path(str(REPO / "stages" / "train.py"), run_name="__main__")
    assert snapshot(trained) == before
    assert leftovers(trained) == []


def _fail_disk_full(path, data):
    raise OSError("disk full")


def test_ctrl_c_during_training_keeps_the_old_outputs(trained):
    before = snapshot(trained)
    with edited_params(trained, "epochs: 1", "epochs: 200"):
        # A suite run as a background job inherits an ignored SIGINT, which Python would keep.
        process = subprocess.Popen([sys.executable, "-m", "stages.train", "adam", "0"],
                                   cwd=trained,
                                   stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                   preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                    signal.SIG_DFL))
        for line in process.stderr:  # Wait until training has begun.
            if "training adam seed 0" in line:
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "interrupted" in stderr
    assert snapshot(trained) == before
    assert leftovers(trained) == []


def test_swapped_artifact_is_refused_before_any_timing(trained):
    assert run_stage(trained, "prune", "adam").returncode == 0
    pruned = trained / "models" / "adam" / "pruned"
    (pruned / "weight_k90.pt").write_bytes((pruned / "unit_k90.pt").read_bytes())
    result = run_stage(trained, "benchmark", "adam")
    assert result.returncode != 0
    assert "weight_k90.pt holds unit pruning at k=90, expected weight at k=90" in result.stderr
    assert "dvc repro prune" in result.stderr and "Traceback" not in result.stderr
    assert not (trained / "results" / "adam" / "benchmark.csv").exists()


def test_model_of_another_architecture_is_refused_clearly(trained):
    with edited_params(trained, "- 32\n", "- 48\n"):
        result = run_stage(trained, "evaluate", "adam", "0")
    assert result.returncode != 0
    assert "hidden sizes [32, 16], but train.hidden_sizes is [48, 16]" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_recipe_or_seed_not_in_params_is_refused(trained):
    result = run_stage(trained, "evaluate", "sgd", "0")
    assert result.returncode != 0
    assert "recipe 'sgd' is not in train.recipes (adam, l1)" in result.stderr
    result = run_stage(trained, "train", "adam", "7")
    assert "seed 7 is not in train.seeds (0, 1)" in result.stderr


def test_summarize_names_a_missing_network_table(trained):
    result = run_stage(trained, "summarize")
    assert result.returncode != 0
    assert "results/adam/seed0/sweep.csv not found; run the stage that writes it" in (
        result.stderr)
    assert "Traceback" not in result.stderr


def test_an_input_error_under_dvc_says_how_to_restore_the_outputs(trained):
    with edited_params(trained, "lr: 0.001", "lr: -1"):
        result = run_stage(trained, "train", "adam", "0",
                           env={**os.environ, "DVC_STAGE": "train@adam-0"})
    assert result.returncode != 0
    assert "run 'dvc checkout train@adam-0' (from the DVC cache)" in result.stderr


def test_check_params_refuses_an_unknown_key_and_writes_the_same_file_when_valid(trained):
    check = trained / "logs" / "params_check.txt"
    assert run_stage(trained, "check_params").returncode == 0
    valid = check.read_bytes()
    with edited_params(trained, "dpi: 40", "dpi: 50"):  # Another valid file.
        assert run_stage(trained, "check_params").returncode == 0
    assert check.read_bytes() == valid
    with edited_params(trained, "  epochs: 1\n", "  epochs: 1\n  epoch: 3\n"):
        result = run_stage(trained, "check_params")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in result.stderr
