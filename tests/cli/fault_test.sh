#!/usr/bin/env bash
# Fault injection over the real binaries (RELIABILITY.md §5 C.44, C.47, D.52-D.55, D.57): disk full
# while saving, stdout on a full device, a SIGKILL-at-random-moments loop with resume that must end
# bitwise equal to an uninterrupted run, SIGTERM/SIGINT during data loading and evaluation.
# Not here: bad inputs (bad_input_test.sh). Env: FAULT_KILLS (default 20) kills in the loop.
# usage: fault_test.sh BUILD_DIR   (prints "N passed, M failed"; exits non-zero on any failure)
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd)
T=$B/src/vit-train; E=$B/src/vit-eval
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
KILLS=${FAULT_KILLS:-20}
pass=0; failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
final_ok() { tail -n 1 "$1" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if r["event"]=="final" and r["exit_code"]==int(sys.argv[1]) else 1)' "$2"; }
same_tensors() { python3 - "$1" "$2" <<'PY'
import json, struct, sys
def t(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items()}
sys.exit(0 if t(sys.argv[1]) == t(sys.argv[2]) else 1)
PY
}
latest_file() { python3 -c 'import json,os,sys; f=json.load(open(sys.argv[1]+"/checkpoints/latest.json"))["file"]; print(f if os.path.isabs(f) else sys.argv[1]+"/checkpoints/"+f)' "$1"; }
# valid_run DIR NAME: latest.json names a checkpoint that vit-eval accepts, and no temp file is left
valid_run() {
  local f; f=$(latest_file "$1" 2>/dev/null) || { bad "$2: no readable latest.json"; return 1; }
  "$E" --checkpoint "$f" --data "$W/val" >"$W/v.out" 2>"$W/v.err" || { bad "$2: vit-eval on $f: $(grep -m1 error: "$W/v.err")"; return 1; }
  ok
}
python3 "$HERE/make_tiny_dataset.py" "$W/train" --per-class 16
python3 "$HERE/make_tiny_dataset.py" "$W/val" --per-class 4 --seed 1
CFG=$HERE/tiny.json
ARGS=(--config "$CFG" --data "$W/train" --val-data "$W/val")
run() { "$T" "${ARGS[@]}" "$@"; }

# ---------------- disk full while writing a checkpoint -> 74, previous state intact ----------------
R=$W/full
run --steps 2 --set train.checkpoint_every_steps=1 --out "$R" >/dev/null 2>&1 || bad "disk full: base run"
snap() { (cd "$R" && sha256sum checkpoints/step-* checkpoints/latest.json best.safetensors); }
snap >"$W/full.sha"
cksize=$(stat -c %s "$R/checkpoints/step-00000002.safetensors")
limit=$((cksize / 1024 / 2))  # KiB: half a checkpoint; the logs and JSON files stay far below
(trap '' XFSZ; ulimit -f "$limit"; exec "$T" "${ARGS[@]}" --steps 6 --set train.checkpoint_every_steps=1 --out "$R" --resume auto \
  >"$W/full.out" 2>"$W/full.err"); rc=$?
[[ $rc == 74 ]] && ok || bad "disk full: exit $rc, want 74 ($(grep -m1 error: "$W/full.err"))"
final_ok "$W/full.out" 74 && ok || bad "disk full: final record"
[[ $(grep -c '^error: ' "$W/full.err") == 1 ]] && grep '^error: ' "$W/full.err" | grep -q "File too large" && ok \
  || bad "disk full: want one error line saying 'File too large': $(grep error: "$W/full.err")"
snap | cmp -s - "$W/full.sha" && ok || bad "disk full: earlier checkpoints or latest.json changed"
ls -A "$R/checkpoints" "$R" | grep -q '\.tmp\.' && bad "disk full: temp file left behind" || ok
valid_run "$R" "disk full"
expect_resume() {  # the same run resumes to completion once space is back
  run --steps 6 --set train.checkpoint_every_steps=1 --out "$R" --resume auto >"$W/full2.out" 2>"$W/full2.err" && final_ok "$W/full2.out" 0 \
    && ok || bad "disk full: resume afterwards failed: $(grep -m1 error: "$W/full2.err")"
}
expect_resume
# stdout on a full device -> 74 after a checkpoint
run --steps 2 --out "$W/devfull" >/dev/full 2>"$W/devfull.err"; rc=$?
[[ $rc == 74 ]] && ok || bad "stdout on /dev/full: exit $rc, want 74"
grep -q '^error: .*stdout' "$W/devfull.err" && ok || bad "stdout on /dev/full: no error line naming stdout: $(grep error: "$W/devfull.err")"

# stdout piped into `head -n1`: the reader goes away, training completes (RELIABILITY.md §2, D.57).
# Enough steps that the run outlasts head even when head waits for a core behind the trainer's
# threads (with 20 steps a fast build could write its last record before head had exited: no EPIPE).
run --steps 200 --out "$W/pipe" 2>"$W/pipe.err" | head -n 1 >/dev/null; rc=${PIPESTATUS[0]}
[[ $rc == 0 ]] && ok || bad "stdout | head -n1: exit $rc, want 0 ($(grep -am1 error: "$W/pipe.err"))"
[[ $(grep -ac EPIPE "$W/pipe.err") == 1 ]] && ok || bad "stdout | head -n1: want one EPIPE warning"
valid_run "$W/pipe" "stdout | head -n1"

# ---------------- SIGKILL at random moments, resume each time, bitwise equal at the end ----------------
# Enough steps that 20 kills cannot use them up: a start runs for its 0-6 checkpoints plus up to
# 30 ms and the polling lag, which at ~1-2 ms per tiny step was ~15 steps (300 ran out now and then).
STEPS=${FAULT_STEPS:-1500}
KARGS=(--steps "$STEPS" --set train.checkpoint_every_steps=1 --set train.keep_checkpoints=2 --set train.eval_every_steps=10)
run "${KARGS[@]}" --out "$W/straight" >/dev/null 2>"$W/straight.err" || bad "kill loop: straight run failed"
# Each start is killed at a pseudo-random moment: either during start-up (data loading, resume
# validation) after 0-80 ms, or once it has committed 1-6 more checkpoints, plus 0-30 ms, which
# with a checkpoint every step often lands inside a checkpoint write. Progress per kill is
# bounded by that (and the polling lag), so the kills fit in the run's STEPS.
kills=0; in_write=0; iter=0
while (( kills < KILLS && iter < 2 * KILLS )); do
  iter=$((iter + 1))
  read -r want extra < <(python3 -c "import random,sys; r=random.Random(int(sys.argv[1])); w=r.choice([0,1,2,3,4,5,6]); print(w, round(r.uniform(0, 0.08) if w == 0 else r.uniform(0, 0.03), 3))" "$iter")
  : >"$W/k.out"
  "$T" "${ARGS[@]}" "${KARGS[@]}" --out "$W/killed" --resume auto >"$W/k.out" 2>"$W/k.err" & pid=$!
  if (( want > 0 )); then
    while kill -0 $pid 2>/dev/null && (( $(grep -c '"event":"checkpoint"' "$W/k.out") < want )); do sleep 0.005; done
  fi
  sleep "$extra"
  if kill -9 $pid 2>/dev/null; then
    wait $pid 2>/dev/null
    kills=$((kills + 1))
    ls -A "$W/killed/checkpoints" 2>/dev/null | grep -q '\.tmp\.' && in_write=$((in_write + 1))
    [[ -f $W/killed/checkpoints/latest.json ]] && { valid_run "$W/killed" "after kill $kills" || break; }
  else
    wait $pid; rc=$?
    bad "kill loop: a run ended by itself (exit $rc) before kill $((kills + 1))"
    break
  fi
done
run "${KARGS[@]}" --out "$W/killed" --resume auto >"$W/k.out" 2>"$W/k.err" || bad "kill loop: final resume failed: $(grep -m1 error: "$W/k.err")"
echo "kill loop: $kills kills survived ($in_write left a partial checkpoint write behind), $iter starts"
(( kills >= KILLS )) && ok || bad "kill loop: only $kills kills (want $KILLS): the run finished too fast"
(( in_write > 0 )) && ok || echo "note: no kill landed inside a checkpoint write this time"
f=$(printf 'step-%08d.safetensors' "$STEPS")
same_tensors "$W/straight/checkpoints/$f" "$W/killed/checkpoints/$f" && ok || bad "kill loop: final weights differ from the uninterrupted run"
# the resume state in the metadata matches too (config differs only by the run directory's name)
python3 - "$W/straight/checkpoints/$f" "$W/killed/checkpoints/$f" <<'PY' && ok || bad "kill loop: final train_state/classes differ"
import json, struct, sys
def m(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; meta = json.loads(b[8:8 + n])["__metadata__"]
    return {k: v for k, v in meta.items() if k not in ("config", "config_sha256")}
a, b = m(sys.argv[1]), m(sys.argv[2])
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k): print("  differs:", k, a.get(k), "|", b.get(k))
sys.exit(0 if a == b else 1)
PY

# ---------------- SIGTERM / SIGINT during data loading and evaluation ----------------
# A folder of 3 x 300 hard links to a 1024x1024 PNG: slow to decode (seconds), so signals land
# inside the loops; the delays below are fractions of that.
python3 - "$W/big" <<'PY'
import os, random, struct, sys, zlib
def chunk(k, d):
    b = k + d; return struct.pack(">I", len(d)) + b + struct.pack(">I", zlib.crc32(b) & 0xFFFFFFFF)
S = 1024
for c in range(3):
    rng = random.Random(c); row = bytes(rng.randrange(256) for _ in range(S))
    raw = b"".join(b"\x00" + row[y % 7:] + row[:y % 7] for y in range(S))
    img = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", S, S, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")
    d = os.path.join(sys.argv[1], "class_%d" % c); os.makedirs(d)
    first = os.path.join(d, "000.png"); open(first, "wb").write(img)
    for i in range(1, 300):
        os.link(first, os.path.join(d, "%03d.png" % i))
PY
# signal_case NAME SIG CODE DELAY CMD...: send SIG after DELAY s, expect exit CODE, "interrupted" final record
signal_case() {
  local name=$1 sig=$2 want=$3 delay=$4; shift 4
  "$@" >"$W/$name.out" 2>"$W/$name.err" & local pid=$!
  sleep "$delay"; local t0; t0=$(date +%s.%N)
  kill -"$sig" $pid; wait $pid; local rc=$?
  local dt; dt=$(python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]), 2))" "$t0")
  echo "$name: exit $rc ${dt}s after SIG$sig"
  [[ $rc == "$want" ]] && ok || bad "$name: exit $rc, want $want"
  final_ok "$W/$name.out" "$want" && tail -n 1 "$W/$name.out" | grep -q '"interrupted"' && ok || bad "$name: final record"
}
signal_case term_loading TERM 143 0.3 "$T" --config "$CFG" --data "$W/big" --out "$W/sig-load" --steps 5
[[ -f $W/sig-load/checkpoints/latest.json ]] && valid_run "$W/sig-load" "SIGTERM during loading"
signal_case int_loading INT 130 0.3 "$T" --config "$CFG" --data "$W/big" --out "$W/sig-load2" --steps 5
# evaluation streamed from disk (no cache): the signal lands inside eval
# A checkpoint at step 1, then the step-2 eval streams the big folder; the signal is sent once the
# first checkpoint exists, so it lands in that eval (not in the start-up decode, which is also
# interruptible but leaves nothing to check).
"$T" --config "$CFG" --data "$W/train" --val-data "$W/big" --set data.cache_limit_mb=0 --out "$W/sig-eval" --steps 2 \
  --set train.checkpoint_every_steps=1 --set train.eval_every_steps=2 >"$W/int_eval.out" 2>"$W/int_eval.err" & pid=$!
for _ in $(seq 600); do [[ -f $W/sig-eval/checkpoints/latest.json ]] && break; sleep 0.1; done
sleep 0.3; kill -INT $pid; wait $pid; rc=$?
[[ $rc == 130 ]] && ok || bad "int_eval: exit $rc, want 130"
final_ok "$W/int_eval.out" 130 && tail -n 1 "$W/int_eval.out" | grep -q '"interrupted"' && ok || bad "int_eval: final record"
valid_run "$W/sig-eval" "SIGINT during eval"
run --steps 1 --out "$W/sig-ok" >/dev/null 2>&1
signal_case term_vit_eval TERM 143 0.5 "$E" --checkpoint "$W/sig-ok/checkpoints/step-00000001.safetensors" --data "$W/big"
signal_case int_vit_eval INT 130 0.5 "$E" --checkpoint "$W/sig-ok/checkpoints/step-00000001.safetensors" --data "$W/big"
# resuming after the interrupted eval completes the run
run --out "$W/sig-eval" --steps 2 --resume auto >"$W/sig-res.out" 2>&1 && ok || bad "resume after SIGINT in eval"

echo "$pass passed, $failed failed"
[[ $failed == 0 ]]
