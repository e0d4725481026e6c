#!/usr/bin/env bash
# Issue 13's GPU figures in one go, on a machine with one CUDA GPU (a few minutes on an H100):
#   goal 2: OPIS of 1,000,000 x 128 embeddings, 1,000 classes, after a check against the CPU
#           kernels at N = 20,000 (bench_opis_gpu.py)
#   goal 6: our trainer against a plain PyTorch loop, ResNet-50 at 224 px, bf16 (bench_train.py)
#
#   bash bench/gpu.sh [OUT_DIR]        # run from the repository root; logs go to OUT_DIR too
#
# PYTHON picks the interpreter (default: .venv/bin/python when there is one, else python3). It
# needs requirements.txt's packages; on a machine with its own CUDA PyTorch, install the others
# beside it (pytorch-metric-learning, plotly and optuna are pure Python).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
out=${1:-bench-gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt" || status=1
timeout 420 "$py" bench/bench_opis_gpu.py 2>&1 | tee "$out/opis_gpu.txt" || status=1
timeout 300 "$py" bench/bench_train.py 2>&1 | tee "$out/train.txt" || status=1
exit $status
