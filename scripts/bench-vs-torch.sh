#!/usr/bin/env bash
# Side-by-side throughput of vit-bench and PyTorch 1.13 (../shared/bench/torch_ref.py) on the
# reference workloads, run INTERLEAVED in one invocation (ours, torch, ours, torch, ...) so both
# see the same machine load; prints a markdown table of both medians and the ratio ours/torch,
# and writes it with the command, date and machine into bench/RESULTS.md.
# Usage: scripts/bench-vs-torch.sh [--quick] [--rounds N] [--build DIR] [--threads N] [--no-write]
#                                  [--baseline OLD_VIT_BENCH]
#   --quick: W1 train/eval only (a few minutes). Default: W1 variants, W2, W3 (257..4097 tokens).
#   --baseline: also run an older vit-bench binary in the same interleaving (a "before" column).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
QUICK=0
ROUNDS=2
THREADS=2
WRITE=1
WINDOWS=5
WSEC=2
BASELINE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --windows) WINDOWS="$2"; shift ;;
    --window-seconds) WSEC="$2"; shift ;;
    --no-write) WRITE=0 ;;
    --baseline) BASELINE="$2"; shift ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

TORCH_REF="${TORCH_REF:-$ROOT/../shared/bench/torch_ref.py}"
PY=/usr/bin/python3
BENCH="$BUILD/src/vit-bench"
[[ -x "$BENCH" ]] || { echo "no $BENCH: build it first (cmake --build $BUILD --target vit-bench)" >&2; exit 1; }
[[ -f "$TORCH_REF" ]] || { echo "no torch_ref.py at $TORCH_REF (set TORCH_REF)" >&2; exit 1; }

# PyTorch from Debian, with OpenBLAS (without it torch falls back to the reference BLAS, ~10x slower).
if ! "$PY" -c 'import torch' 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq python3-torch libopenblas0-openmp
fi

# Each case: a label, vit-bench arguments, torch_ref.py arguments (both print one JSON per result).
CASES=(
  "W1 train|--workload w1 --what train|--preset w1 --what train"
  "W1 eval|--workload w1 --what eval|--preset w1 --what eval"
)
if [[ $QUICK -eq 0 ]]; then
  CASES+=(
    "W1 train performer|--workload w1 --attn performer --what train|--preset w1 --attn performer --what train"
    "W1 train RAdam+Lookahead|--workload w1 --opt lookahead_radam --what train|--preset w1 --opt radam --lookahead --what train"
    "W2 train|--workload w2 --what train|--preset w2 --what train"
    "W2 train 1 thread|--workload w2 --what train --threads 1|--preset w2 --what train --threads 1"
    "W3 performer 257|--workload w3 --attn performer --image-size 64 --what train|--preset w3 --attn performer --image-size 64 --what train"
    "W3 performer 1025|--workload w3 --attn performer --image-size 128 --what train|--preset w3 --attn performer --image-size 128 --what train"
    "W3 performer 4097|--workload w3 --attn performer --image-size 256 --what train|--preset w3 --attn performer --image-size 256 --what train"
    "W3 softmax 4097|--workload w3 --attn softmax --image-size 256 --what train --warmup 1 --windows 2 --max-seconds 30|--preset w3 --attn softmax --image-size 256 --what train --warmup 1 --windows 2 --max-sec 30"
  )
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS="$THREADS"
# img/s and RSS of the first result line of a run ("" when it failed).
field() { "$PY" -c 'import json,sys
for line in open(sys.argv[1]):
    line=line.strip()
    if line.startswith("RESULT "): line=line[7:]
    if not line.startswith("{"): continue
    d=json.loads(line)
    if d.get("name")=="fma_probe": continue
    print(d.get(sys.argv[2],"")); break' "$1" "$2"; }
# CPU time the hypervisor stole from this VM (all CPUs), as "steal total" jiffies; steal_pct
# gives the percentage between two readings. A run with steal well above 0 is a disturbed run: two
# threads in lock-step wait for the slower vCPU, which costs us more than PyTorch.
stolen() { awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit}' /proc/stat; }
steal_pct() { awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " ");
  printf "%.1f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0}'; }
median() { "$PY" -c 'import statistics,sys
v=[float(x) for x in sys.argv[1:] if x]
print(round(statistics.median(v),2) if v else "")' "$@"; }

ROWS=()
for c in "${CASES[@]}"; do
  IFS='|' read -r label ours theirs <<<"$c"
  ov=(); tv=(); orss=(); trss=(); bv=(); ost=(); tst=()
  for ((r = 0; r < ROUNDS; r++)); do
    if [[ -n "$BASELINE" ]]; then
      # shellcheck disable=SC2086
      "$BASELINE" --no-probe --threads "$THREADS" --windows "$WINDOWS" --window-seconds "$WSEC" $ours >"$TMP/b" 2>/dev/null || true
      bv+=("$(field "$TMP/b" img_s)")
    fi
    s0=$(stolen)
    # shellcheck disable=SC2086
    "$BENCH" --no-probe --threads "$THREADS" --windows "$WINDOWS" --window-seconds "$WSEC" $ours >"$TMP/o" 2>"$TMP/oe" || true
    s1=$(stolen)
    # shellcheck disable=SC2086
    "$PY" "$TORCH_REF" bench --threads "$THREADS" --windows "$WINDOWS" --window-sec "$WSEC" $theirs >"$TMP/t" 2>"$TMP/te" || true
    s2=$(stolen)
    ov+=("$(field "$TMP/o" img_s)"); tv+=("$(field "$TMP/t" img_s)")
    orss+=("$(field "$TMP/o" peak_rss_mib)"); trss+=("$(field "$TMP/t" peak_rss_mib)")
    ost+=("$(steal_pct "$s0" "$s1")"); tst+=("$(steal_pct "$s1" "$s2")")
    echo "$label round $((r + 1)): ours ${ov[-1]} img/s (steal ${ost[-1]}%), torch ${tv[-1]} img/s (steal ${tst[-1]}%)" >&2
  done
  om=$(median "${ov[@]}"); tm=$(median "${tv[@]}")
  if [[ "$label" == "W1 train" ]]; then W1_IMG_S="$om"; fi
  ratio=$("$PY" -c 'import sys
try: print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}x")
except Exception: print("n/a")' "$om" "$tm")
  if [[ -n "$BASELINE" ]]; then
    bm=$(median "${bv[@]}")
    ROWS+=("| $label | $bm | $om | $tm | $ratio | $(median "${orss[@]}") | $(median "${trss[@]}") | $(median "${ost[@]}") / $(median "${tst[@]}") |")
  else
    ROWS+=("| $label | $om | $tm | $ratio | $(median "${orss[@]}") | $(median "${trss[@]}") | $(median "${ost[@]}") / $(median "${tst[@]}") |")
  fi
done

# Fraction of the machine's FMA peak (vit-bench's probe) reached by W1 training, this build:
# the median W1 train rate of the rounds above, at vit-bench's analytic count of the GEMMs this
# build executes (the class-pooled last block computes one row after its qkv projection).
PEAK="$("$BENCH" --workload w1 --what train --threads "$THREADS" --windows 1 --window-seconds 0.5 2>/dev/null | "$PY" -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin if l.startswith("{")]
p=[r for r in rows if r.get("name")=="fma_probe"]; t=[r for r in rows if r.get("name")=="train"]
if p and t and sys.argv[1]:
    g, pk = float(sys.argv[1]) * 3 * t[0]["fwd_mflop_per_img"] / 1000, p[0]["gflop_s"]
    gm = float(sys.argv[1]) * 3 * t[0]["model_fwd_mflop_per_img"] / 1000
    print("W1 train %.1f GFLOP/s executed (median of the rounds; %.1f at torch_ref'"'"'s count of the whole model) = %.0f%% of the FMA probe (%s GFLOP/s on %s threads, %s on 1)" % (g, gm, 100 * g / pk, pk, p[0]["threads"], p[0]["gflop_s_1_thread"]))' "${W1_IMG_S:-}" || true)"
echo "$PEAK"

# (plain ifs: under set -e a failing [[ ]] as the last command of a $(...) would end the script)
CMD="scripts/bench-vs-torch.sh"
if [[ $QUICK -eq 1 ]]; then CMD+=" --quick"; fi
if [[ -n "$BASELINE" ]]; then CMD+=" --baseline $BASELINE"; fi
CMD+=" --rounds $ROUNDS --threads $THREADS --windows $WINDOWS --window-seconds $WSEC"
if [[ -n "$BASELINE" ]]; then
  HDR=("| workload | before img/s | ours img/s | torch img/s | ours/torch | ours peak RSS MiB | torch peak RSS MiB | host steal % ours / torch |" "|---|---|---|---|---|---|---|---|")
else
  HDR=("| workload | ours img/s | torch img/s | ours/torch | ours peak RSS MiB | torch peak RSS MiB | host steal % ours / torch |" "|---|---|---|---|---|---|---|")
fi
TABLE="$(printf '%s\n' "${HDR[@]}" "${ROWS[@]}")"
echo "$TABLE"
if [[ $WRITE -eq 1 ]]; then
  mkdir -p "$ROOT/bench"
  {
    echo "# vit-bench vs PyTorch (latest run)"
    echo
    echo "Medians over $ROUNDS interleaved rounds (each the median of $WINDOWS windows of ~${WSEC} s), $THREADS threads."
    echo "Host steal: the share of CPU time the hypervisor took from this VM while each side ran"
    echo "(/proc/stat; median of the rounds): well above 0, the run was disturbed."
    echo
    echo "- command: \`$CMD\`"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- torch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
    echo "- peak: $PEAK"
    echo
    echo "$TABLE"
  } >"$ROOT/bench/RESULTS.md"
  echo "wrote $ROOT/bench/RESULTS.md" >&2
fi
