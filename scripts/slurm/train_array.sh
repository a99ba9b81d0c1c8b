#!/bin/bash
#SBATCH --job-name=prunekit-train
#SBATCH --output=prunekit-train-%A_%a.out
# One array task per train stage (submit.sh): the stage that `dvc stage list` names at
# SLURM_ARRAY_TASK_ID (0-based) is reproduced in a clone of its own, since DVC locks a workspace
# against a second run, and its outputs and run-cache entry go to the shared remote. Needs
# PRUNEKIT_REPO (a git repository to clone), PRUNEKIT_REV (the commit) and PRUNEKIT_VENV.
set -euo pipefail
export DVC_NO_ANALYTICS=1 PATH="$PRUNEKIT_VENV/bin:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/prunekit-train-XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone --quiet "$PRUNEKIT_REPO" "$work"
cd "$work"
git checkout --quiet "$PRUNEKIT_REV"
mapfile -t stages < <(dvc stage list --name-only | grep '^train@')
stage=${stages[$SLURM_ARRAY_TASK_ID]}
echo "task $SLURM_ARRAY_TASK_ID: $stage on $(hostname), commit $PRUNEKIT_REV"
dvc repro --pull "$stage"  # Its upstream (download) too, pulled if in the remote.
dvc push --run-cache
