#!/usr/bin/env bash
# Issue 19 re-validation on a quiet host, one command, every result under one $OUT:
#   1. benchmarks/sim_validation.py --preset device-cpu (ponder profile, capacity, 3 loads x 3
#      repeats, held-out report with the linear step model ("before") next to the fit's chosen
#      token exponent), pinned to $CPUS (client on the last core, server on the others);
#   2. benchmarks/disagg.py colocated3 / 2P1D / 1P2D (3 workers each, shm KV), taskset to the same
#      cores minus the last, simulator next to every point.
# Everything is written under $OUT/work and packed into $OUT/results.tar.gz (the step logs too:
# the device returns at most 8 files), with the two reports and the log beside it.
#
#   CUDA_VISIBLE_DEVICES="" CPUS=8-15 OUT=$OUT bash benchmarks/sim_revalidate.sh
#   TINY=1 CPUS=0-1 OUT=/tmp/reval bash benchmarks/sim_revalidate.sh      # smoke test, seconds
set -uo pipefail
: "${OUT:?set OUT}" "${CPUS:=8-15}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work="$OUT/work"
mkdir -p "$work/disagg"
last=${CPUS##*[-,]}
server_cpus=$(python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from sim_validation import parse_cpus; print(','.join(map(str, parse_cpus('$CPUS')[:-1])))")
if [ -n "${TINY:-}" ]; then
  sim=(--preset smoke)
  disagg=(--configs 1P2D,2P1D --rates 2,4 --num-prompts 8 --input-len 96 --output-len 4 --sim-requests 40)
else
  sim=(--preset device-cpu --replay-seconds 180)
  disagg=(--configs colocated3,2P1D,1P2D --rates 1,2,4 --num-prompts 16)
fi
begin=$(date +%s)
{
  echo "== sim_validation $(date -u '+%F %T') cpus $CPUS"
  python3 benchmarks/sim_validation.py "${sim[@]}" --cpus "$CPUS" --out "$work/simval"
  echo "sim rc $? after $(( $(date +%s) - begin )) s"
  echo "== disagg $(date -u '+%F %T') cpus $server_cpus"
  taskset -c "$server_cpus" python3 benchmarks/disagg.py "${disagg[@]}" --out "$work/disagg" \
    > "$work/disagg/table.md" || echo "disagg failed"
  echo "disagg rc $? after $(( $(date +%s) - begin )) s"
} 2>&1 | tee "$work/log.txt"
cp "$work/log.txt" "$OUT/log.txt"
cp "$work/simval/sim_validation.md" "$OUT/sim_validation.md" 2>/dev/null
cp "$work/disagg/table.md" "$OUT/disagg_table.md" 2>/dev/null
tar -czf "$OUT/results.tar.gz" -C "$work" .
echo "wall $(( $(date +%s) - begin )) s; $OUT: $(ls "$OUT" | tr '\n' ' ')"
