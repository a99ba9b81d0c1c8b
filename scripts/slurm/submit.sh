#!/bin/bash
# Trains every train@ stage of the last commit as one SLURM array task each, then, once all of
# them succeeded, assembles the pipeline in this checkout. docs/many-machines.md has the recipe.
#
# Usage, from anywhere in a clean checkout with a shared DVC remote in .dvc/config:
#   scripts/slurm/submit.sh [sbatch options for every job, e.g. --partition=cpu --time=2:00:00]
# PRUNEKIT_VENV names the virtual environment the jobs use (default: this checkout's .venv).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export DVC_NO_ANALYTICS=1
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "uncommitted changes: the workers clone the last commit, so commit first" >&2
  exit 1
fi
if ! dvc remote default --project >/dev/null; then
  echo "no default DVC remote in .dvc/config: add one with 'dvc remote add -d'" >&2
  exit 1
fi
count=$(dvc stage list --name-only | grep -c '^train@')
jobs="ALL,PRUNEKIT_REPO=$PWD,PRUNEKIT_REV=$(git rev-parse HEAD)"
jobs+=",PRUNEKIT_VENV=${PRUNEKIT_VENV:-$PWD/.venv}"
train=$(sbatch --parsable --export="$jobs" --array="0-$((count - 1))" "$@" \
  scripts/slurm/train_array.sh)
assemble=$(sbatch --parsable --export="$jobs" --dependency="afterok:$train" "$@" \
  scripts/slurm/assemble.sh)
echo "train stages: array job $train ($count tasks); assembling: job $assemble"
