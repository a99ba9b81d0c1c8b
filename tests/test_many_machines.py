"""The train matrix fanned out over clones sharing a DVC remote, as docs/many-machines.md says.

Two workers, each in a clone of its own, train one network each and push it with its run-cache
entry; the second is the SLURM launcher's array task, run without SLURM. An assembling clone's
`dvc repro --pull` then trains nothing. One recipe, two seeds, tiny networks.
"""

import os
import pathlib
import stat
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, TINY_PARAMS, make_workspace, needs_fashion_mnist
from test_pipeline import commit_all, dvc, run, stages_restored, stages_run

pytestmark = [needs_fashion_mnist, pytest.mark.slow]
SLURM = REPO / "scripts" / "slurm"
VENV = pathlib.Path(sys.executable).parent.parent  # The jobs put its bin/ first on PATH.
FAN_OUT_PARAMS = {
    **TINY_PARAMS,
    "train": {**TINY_PARAMS["train"], "recipes": {"adam": TINY_PARAMS["train"]["recipes"]["adam"]}},
    "prune": {"k_list": [0, 50], "random_draws": 1, "methods": ["weight"]},
    "benchmark": {"batch_sizes": [1], "k_list": [0, 50], "rounds": 1, "block_seconds": 0.001,
                  "runs": 1, "methods": ["weight"]},
}


def launcher_env(repository, **variables):
    """The environment submit.sh gives the SLURM jobs (the repository, its commit, this venv)."""
    commit = run(repository, "git", "rev-parse", "HEAD").stdout.strip()
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PRUNEKIT_REPO": str(repository),
            "PRUNEKIT_REV": commit, "PRUNEKIT_VENV": str(VENV),
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}", **variables}


def bash(workspace, command, env, check=True):
    """Runs a bash command line in the workspace."""
    result = subprocess.run(["bash", "-c", command], cwd=workspace, env=env, text=True,
                            capture_output=True)
    if check and result.returncode != 0:
        pytest.fail(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def train_md5s(workspace):
    """The md5s of each network's weights and history (not its log of timings) in dvc.lock."""
    stages = yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for name, stage in stages.items()
            if name.startswith("train@") for out in stage["outs"]
            if out["path"].startswith(("models/", "results/"))}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A committed tiny pipeline with a local-folder remote, as step 1 and 2 of the doc set up."""
    folder = tmp_path_factory.mktemp("fan_out")
    origin = make_workspace(folder / "origin", FAN_OUT_PARAMS)
    run(origin, "git", "init", "-q")
    dvc(origin, "remote", "add", "-d", "shared", str(folder / "remote"))
    commit_all(origin, "tiny fan-out")
    return folder


def test_the_doc_has_the_commands_tested_here():
    text = (REPO / "docs" / "many-machines.md").read_text()
    for command in ("dvc remote add -d shared", "dvc stage list --name-only | grep '^train@'",
                    "dvc repro --pull train@adam-0", "dvc push --run-cache",
                    "git pull\ndvc repro --pull\n"):
        assert command in text


def test_two_workers_then_an_assembly_that_trains_nothing(team):
    origin, first, assembly = team / "origin", team / "worker1", team / "assembly"
    for clone in (first, assembly):
        run(team, "git", "clone", "-q", str(origin), str(clone))
    scratch = team / "scratch"
    scratch.mkdir()
    env = launcher_env(origin, TMPDIR=str(scratch))

    worker = bash(first, "dvc repro --pull train@adam-0 && dvc push --run-cache", env)
    assert stages_run(worker) == ["check_params", "download", "train@adam-0"]
    assert run(first, "git", "status", "--porcelain").stdout.split() == ["??", "dvc.lock"]
    # The second worker: the launcher's array task 1, in a clone it makes and deletes itself.
    task = bash(team, f"bash {SLURM / 'train_array.sh'}", {**env, "SLURM_ARRAY_TASK_ID": "1"})
    assert stages_run(task) == ["train@adam-1"]
    assert stages_restored(task) == ["check_params", "download"]  # From the remote.
    assert not any(path.name.startswith("prunekit-") for path in scratch.iterdir())

    assembled = bash(team, f"bash {SLURM / 'assemble.sh'}", launcher_env(assembly))
    assert stages_run(assembled) == ["benchmark@adam", "evaluate@adam-0", "evaluate@adam-1",
                                     "plot", "prune@adam", "summarize"]
    assert stages_restored(assembled) == ["check_params", "download", "train@adam-0",
                                          "train@adam-1"]
    log = "logs/train/adam/seed0.json"  # Restored, not recomputed: the worker's own timings.
    assert (assembly / log).read_bytes() == (first / log).read_bytes()

    # One machine training both networks gets the same weights and histories.
    assert stages_run(dvc(first, "repro", "train@adam-1")) == ["train@adam-1"]
    assert len(train_md5s(first)) == 4
    assert train_md5s(assembly) == train_md5s(first)


def test_submit_sizes_the_array_and_chains_the_assembly(team, tmp_path):
    origin = team / "origin"
    calls = tmp_path / "sbatch_calls"
    fake = tmp_path / "bin" / "sbatch"  # Records its arguments; answers job id 7.
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho 7\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": os.pathsep.join([str(fake.parent), str(VENV / "bin"), os.environ["PATH"]])}
    result = bash(origin, f"bash {SLURM / 'submit.sh'}", env)
    assert "array job 7 (2 tasks); assembling: job 7" in result.stdout
    train, assemble = calls.read_text().splitlines()
    assert "--array=0-1" in train.split() and train.endswith("scripts/slurm/train_array.sh")
    assert "--dependency=afterok:7" in assemble.split()
    assert f"PRUNEKIT_REPO={origin}," in train
    params = origin / "params.yaml"
    params.write_text(params.read_text() + "\n")
    refused = bash(origin, f"bash {SLURM / 'submit.sh'}", env, check=False)
    assert refused.returncode == 1 and refused.stderr.endswith("commit first\n")
