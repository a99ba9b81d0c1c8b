#!/bin/bash
#SBATCH --job-name=prunekit-assemble
#SBATCH --output=prunekit-assemble-%j.out
# Runs once every train task succeeded (submit.sh): restores each network from the shared
# run-cache, runs the stages after training in PRUNEKIT_REPO and pushes what they made. Fails
# if a network had to be trained here, that is, if a worker's result is missing from the remote.
set -euo pipefail
export DVC_NO_ANALYTICS=1 PATH="$PRUNEKIT_VENV/bin:$PATH"
cd "$PRUNEKIT_REPO"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
dvc repro --pull | tee "$log"
dvc push --run-cache
if grep "Running stage 'train@" "$log"; then
  echo "trained here: those networks were missing from the remote" >&2
  exit 1
fi
echo "assembled; commit dvc.lock, metrics/ and plots/ in $PRUNEKIT_REPO"
