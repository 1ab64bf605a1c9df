#!/usr/bin/env bash
# Fine-tune the shipped model for robustness (preset "robust") on the GPU machine, then measure
# main-task accuracy (the docs/model.md command) and the robustness suite for the shipped model
# and each candidate on the same GPU. Results: $OUT/results.tar.gz; each candidate's model as
# $OUT/model-N.tar.part-* (the file limit of what comes back is 16 MiB).
# Usage (device): bash benchmarks/robust_finetune_device.sh [--with-base] NAME:STEPS[:CONFIG.json]...
set -uo pipefail
with_base=0; if [ "${1:-}" = --with-base ]; then with_base=1; shift; fi
variants=("${@:-r400:400}")
res=/tmp/res; mkdir -p $res
export PYTHONPATH=src PYTHONUNBUFFERED=1 PONDER="python3 -m ponder" EVAL_ARGS="--concurrency 96"
base=src/ponder/assets/ponder-reasoner
for variant in "${variants[@]}"; do  # candidates train side by side on the one GPU
  IFS=: read -r name n config <<< "$variant"
  python3 -m ponder.train --preset robust --steps "$n" ${config:+--config "$config"} \
    --out-dir /tmp/robust-$name --no-progress > $res/train-$name.log 2>&1 &
done
wait
models=(); if [ $with_base = 1 ]; then models=("base=$base"); fi
for variant in "${variants[@]}"; do
  IFS=: read -r name n config <<< "$variant"
  models+=("$name=/tmp/robust-$name/model")
  cp /tmp/robust-$name/train_log.jsonl $res/train_log-$name.jsonl
  tar -C /tmp/robust-$name -cf - model | split -b 15M - "$OUT/model-$name.tar.part-"
done
limit_s=${EVAL_LIMIT_S:-330}  # every eval runs at once; whatever finished comes back
for entry in "${models[@]}"; do
  name=${entry%%=*}; path=${entry#*=}
  timeout $limit_s python3 -m ponder eval --model "$path" --tasks all --difficulty easy,hard \
    --limit 32 --concurrency 96 --no-progress --json $res/main-$name.json > $res/main-$name.log 2>&1 &
  timeout $limit_s bash benchmarks/robustness.sh "$path" $res/rob-$name 32 > $res/rob-$name.log 2>&1 &
done
wait
tar -C $res -czf "$OUT/results.tar.gz" .
