#!/usr/bin/env bash
# End-to-end tests of vit-train / vit-eval over the real binaries: exit codes, stdout JSON Lines,
# run-directory files, signals, kill -9 + resume, bitwise resume, corrupted checkpoints.
# usage: cli_test.sh BUILD_DIR   (prints "N passed, M failed"; exits non-zero on any failure)
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd)
T=$B/src/vit-train; E=$B/src/vit-eval
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
final_ok() { tail -n 1 "$1" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if r["event"]=="final" and r["exit_code"]==int(sys.argv[1]) else 1)' "$2"; }
# expect CODE NAME CMD...: runs CMD with stdout/stderr captured, checks the exit code, the final
# JSON record (when the code is not 0/64 for help/usage paths) and one "error:" line on stderr.
expect() {
  local want=$1 name=$2; shift 2
  "$@" >"$W/$name.out" 2>"$W/$name.err"; local rc=$?
  if [[ $rc != "$want" ]]; then bad "$name: exit $rc, want $want ($(tail -n 2 "$W/$name.err" | tr '\n' ' '))"; return 1; fi
  if [[ $want != 0 ]]; then
    final_ok "$W/$name.out" "$want" || { bad "$name: no final record with exit_code $want"; return 1; }
    if [[ $want != 75 ]]; then  # 75 (time limit) is a planned stop, not an error
      [[ $(grep -c '^error: ' "$W/$name.err") == 1 ]] || { bad "$name: want exactly one 'error:' line on stderr"; return 1; }
    fi
  fi
  ok
}
python3 "$HERE/make_tiny_dataset.py" "$W/train" --per-class 16
python3 "$HERE/make_tiny_dataset.py" "$W/val" --per-class 4 --seed 1
CFG=$HERE/tiny.json
ARGS=(--config "$CFG" --data "$W/train" --val-data "$W/val")
run() { "$T" "${ARGS[@]}" "$@"; }

# --- usage, config, missing input ---
"$T" --help >/dev/null 2>&1 && ok || bad "--help"
expect 64 noargs "$T"
expect 64 badflag "$T" --no-such-flag
expect 66 missingcfg "$T" --config "$W/missing.json"
echo '{"model": {"dimm": 64}}' >"$W/typo.json"
expect 78 typo "$T" --config "$W/typo.json" && { grep -q "did you mean" "$W/typo.err" || bad "typo: no suggestion"; }
expect 78 badset run --set model.heads=3 --out "$W/r-heads"
expect 64 badopt run --opt adamx --out "$W/r-opt"
expect 66 missingdata "$T" --config "$CFG" --data "$W/nope" --out "$W/r-nodata"
mkdir -p "$W/emptyclass/a" "$W/emptyclass/b"; cp "$W/train/class_0/000.png" "$W/emptyclass/a/"
expect 65 emptyclass "$T" --config "$CFG" --data "$W/emptyclass" --out "$W/r-empty"
touch "$W/afile"
expect 73 outisfile run --out "$W/afile"

# --- a short run, its files, then vit-eval on its checkpoint ---
expect 0 train3 run --steps 3 --out "$W/r3"
final_ok "$W/train3.out" 0 || bad "train3 final"
for f in config.json classes.json metrics.jsonl summary.csv best.safetensors checkpoints/latest.json; do
  [[ -f $W/r3/$f ]] && ok || bad "run dir lacks $f"
done
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$W/train3.out" && ok || bad "stdout is not JSON Lines"
ck=$(ls "$W"/r3/checkpoints/step-*.safetensors | tail -n 1)
expect 0 eval "$E" --checkpoint "$ck" --data "$W/val" --predictions-csv "$W/pred.csv" --confusion-csv "$W/conf.csv"
[[ $(wc -l <"$W/pred.csv") == 13 ]] && ok || bad "predictions csv rows"
tail -n 1 "$W/eval.out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if 0 <= r["top1"] <= 100 else 1)' && ok || bad "eval top1"
expect 0 resume_done run --steps 3 --out "$W/r3" --resume auto
tail -n 1 "$W/resume_done.out" | grep -q already_complete && ok || bad "resume of a finished run"
mkdir -p "$W/val2"; cp -r "$W/val/class_0" "$W/val/class_1" "$W/val2/"
expect 65 evalmismatch "$E" --checkpoint "$ck" --data "$W/val2"
expect 0 evalbyname "$E" --checkpoint "$ck" --data "$W/val2" --map-classes-by-name
expect 0 export "$E" --checkpoint "$ck" --export-weights "$W/timm.safetensors"
expect 0 evalweights "$E" --weights "$W/timm.safetensors" --config "$CFG" --data "$W/val"

# --- checkpoints: truncated / bit-flipped -> 65 ---
head -c 100 "$ck" >"$W/trunc.safetensors"
expect 65 trunc "$E" --checkpoint "$W/trunc.safetensors" --data "$W/val"
cp "$ck" "$W/flip.safetensors"; sz=$(stat -c %s "$ck")
printf '\x55' | dd of="$W/flip.safetensors" bs=1 seek=$((sz - 10)) conv=notrunc 2>/dev/null
expect 65 flipped "$E" --checkpoint "$W/flip.safetensors" --data "$W/val"
expect 65 resumecorrupt run --steps 3 --out "$W/r-c" --resume "$W/trunc.safetensors"

# --- exit codes of the run itself ---
expect 3 diverge run --steps 3 --out "$W/r-div" --opt sgd --set optim.lr=1e30
expect 75 walltime run --epochs 100000 --out "$W/r-wall" --max-wall-time 0.5
(trap '' XFSZ; ulimit -f 8; run --steps 4 --out "$W/r-full" >"$W/full.out" 2>"$W/full.err"); rc=$?
[[ $rc == 74 ]] && ok || bad "disk full: exit $rc, want 74"

# --- bitwise resume: 2N straight == N, stop, resume N (softmax, performer, lookahead chain) ---
same_tensors() { python3 - "$1" "$2" <<'PY'
import json, struct, sys
def t(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items()}
sys.exit(0 if t(sys.argv[1]) == t(sys.argv[2]) else 1)
PY
}
for variant in "softmax|" "favor|--set model.attention=\"favor\" --set model.favor.redraw_interval=3" "la|--opt lookahead_radam --lookahead-k 3"; do
  name=${variant%%|*}; extra=${variant#*|}
  eval run --steps 8 --out "$W/s-$name" $extra >/dev/null 2>&1 || bad "$name straight run"
  eval run --steps 8 --out "$W/h-$name" --max-wall-time 1e-9 $extra >/dev/null 2>&1  # stops after step 1
  eval run --steps 8 --out "$W/h-$name" --resume auto $extra >/dev/null 2>&1 || bad "$name resumed run"
  same_tensors "$W/s-$name/checkpoints/step-00000008.safetensors" "$W/h-$name/checkpoints/step-00000008.safetensors" \
    && ok || bad "$name: resumed run differs from the straight run"
done

# --- SIGINT: checkpoint, exit 130, resumable; kill -9 then --resume auto ---
"$T" "${ARGS[@]}" --epochs 100000 --out "$W/r-int" >"$W/int.out" 2>"$W/int.err" & pid=$!
sleep 2; kill -INT $pid; wait $pid; rc=$?
[[ $rc == 130 ]] && ok || bad "SIGINT: exit $rc, want 130"
tail -n 1 "$W/int.out" | grep -q '"interrupted"' && ok || bad "SIGINT: final record"
ls "$W"/r-int/checkpoints/step-*.safetensors >/dev/null 2>&1 && ok || bad "SIGINT: no checkpoint"
"$T" "${ARGS[@]}" --epochs 100000 --out "$W/r-kill" --set train.checkpoint_every_steps=2 >/dev/null 2>&1 & pid=$!
sleep 2; kill -9 $pid; wait $pid 2>/dev/null
expect 0 afterkill run --epochs 100000 --steps 60 --out "$W/r-kill" --set train.checkpoint_every_steps=2 --resume auto
tail -n 1 "$W/afterkill.out" | grep -q '"resumed_from":"' && ok || bad "kill -9: did not resume from a checkpoint"

echo "$pass passed, $failed failed"
[[ $failed == 0 ]]
