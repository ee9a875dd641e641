#!/usr/bin/env bash
# Grid sweep over a preset: one run directory per point, then a CSV of the final metrics read from
# each run's final JSON line (never from log text).
# usage: scripts/sweep.sh [-c CONFIG] [-o OUTDIR] [-b BIN_DIR] [-e EPOCHS] [--opts "sgd adamw ..."] [--lrs "1e-3 3e-3"] [-- extra vit-train flags]
# default grid: the 8 optimizer chains x 2 learning rates on configs/quickstart.json.
set -uo pipefail
cd "$(dirname "$0")/.."
cfg=configs/quickstart.json; out=runs/sweep; bin=build/src; epochs=""
opts="sgd adam adamw radam lookahead_sgd lookahead_adam lookahead_adamw lookahead_radam"; lrs="1e-3 3e-3"
while [ $# -gt 0 ]; do
  case $1 in
    -c) cfg=$2; shift 2 ;; -o) out=$2; shift 2 ;; -b) bin=$2; shift 2 ;; -e) epochs=$2; shift 2 ;;
    --opts) opts=$2; shift 2 ;; --lrs) lrs=$2; shift 2 ;; --) shift; break ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 64 ;;
  esac
done
mkdir -p "$out"
csv=$out/results.csv
echo "opt,lr,status,exit_code,best_eval_top1,final_eval_top1,steps,run_dir" >"$csv"
for o in $opts; do
  for lr in $lrs; do
    dir=$out/$o-lr$lr
    echo "== $o lr=$lr -> $dir" >&2
    "$bin/vit-train" --config "$cfg" --opt "$o" --lr "$lr" ${epochs:+--epochs "$epochs"} --out "$dir" --resume auto --quiet "$@" >"$dir.jsonl"
    rc=$?
    if [ $rc -ge 128 ]; then echo "interrupted (exit $rc): stopping the sweep" >&2; exit $rc; fi
    tail -n 1 "$dir.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); o, lr, d = sys.argv[1:4]
f = lambda v: "" if v is None else ("%.2f" % v if isinstance(v, float) else str(v))
print(",".join([o, lr, r["status"], str(r["exit_code"]), f(r["best_eval_top1"]), f(r["final_eval_top1"]), str(r["steps"]), d]))
' "$o" "$lr" "$dir" >>"$csv"
  done
done
column -s, -t <"$csv" >&2
echo "$csv"
