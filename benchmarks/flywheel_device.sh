#!/usr/bin/env bash
# Issue 20 on the GPU machine, one call (<= 9 min wall on one H100): fine-tune the built-in model
# with answers that carry their working (`python -m ponder.train --preset working`, from the
# shipped weights), then shipped vs candidate: main task of every family, robustness (canonical
# and paraphrased; effort none, thinking_budget 16/64), and greedy vs SC16 vs confidence early
# stop on the 768 hard problems of the test-time-scaling figures, in shards side by side on the
# GPU; tables and JSON in $OUT (summary.md, summary.json, results.tar.gz), the candidate in
# $OUT/candidate (weights in 15 MiB parts). Details: benchmarks/flywheel_device.py.
# Usage (device): bash benchmarks/flywheel_device.sh [--steps N] [--budget-s S] [--parallel P] ...
#        (CPU, venv active: python3 needs torch):  OUT=/tmp/fw bash benchmarks/flywheel_device.sh --smoke
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/fw-out}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python3 benchmarks/flywheel_device.py --out "$out" "$@" 2>&1 | tee "$out/run.log"
