#!/usr/bin/env bash
# One-shot GPU check (benchmarks/gpu_check.py): matmul rate, the D+RMI training
# step in float32 / mixed_bfloat16 / float32+XLA, evaluation expressions/s, and
# the GPU's loss and gradients against the CPU's. No network, installs nothing;
# about 5-8 minutes on one H100/H200-class GPU. Prints a short table last.
#
#   GPU_CHECK_DIR=/some/dir benchmarks/gpu_check.sh            # on the GPU machine
#   GPU_CHECK_DIR=/tmp/x benchmarks/gpu_check.sh --dry-run     # tiny sizes, any machine
#
# JSON: $GPU_CHECK_DIR/gpu_check-<host kind>[-dry-run].json (default
# benchmarks/results/gpu_check). Python: $PYTHON, else the project's .venv,
# else python3 on the PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${PYTHON:-}" ]]; then
  py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi
args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) args+=(--dry_run) ;;
    *) args+=("$arg") ;;
  esac
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m benchmarks.gpu_check --output_dir="${GPU_CHECK_DIR:-benchmarks/results/gpu_check}" "${args[@]}"
