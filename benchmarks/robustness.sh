#!/usr/bin/env bash
# Robustness of a model outside its task format (docs/flywheel.md, "Robustness"): easy items of
# every family, canonical and held-out phrasings, with thinking, without (reasoning_effort none)
# and at small thinking budgets. Usage: benchmarks/robustness.sh MODEL_DIR OUT_PREFIX [LIMIT]
set -euo pipefail
model=$1; out=$2; limit=${3:-16}
ponder=(${PONDER:-ponder})  # e.g. PONDER="python3 -m ponder" where ponder is not installed
common=(--model "$model" --tasks all --difficulty easy --limit "$limit" --max-tokens 600 --no-progress
  ${EVAL_ARGS:-})
for phrasing in canonical paraphrase; do
  "${ponder[@]}" eval "${common[@]}" --phrasing "$phrasing" --strategy greedy \
    --strategy budget:thinking_budget=16 --strategy budget:thinking_budget=64 \
    --json "$out-$phrasing-think.json"
  "${ponder[@]}" eval "${common[@]}" --phrasing "$phrasing" --no-thinking --strategy greedy \
    --json "$out-$phrasing-nothink.json"
done
