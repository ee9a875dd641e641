#!/usr/bin/env bash
# End-to-end data-parallel tests: vit-train under `mpirun -np 2` on this machine (tiny model,
# tiny generated data). Checks: 2 ranks match 1 process at the same global batch (SGD, within a
# float bound), repeat runs and same-R resumes are bitwise identical, a resume with another rank
# count continues, a signal to one rank stops all at the same step, a config that differs on
# one rank and an indivisible batch fail cleanly with the same exit code.
# usage: mpi_test.sh BUILD_DIR [MPIEXEC]   (prints "N passed, M failed"; non-zero on any failure)
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd); MPIEXEC=${2:-mpiexec}
T=$B/src/vit-train; CMP="python3 $HERE/../dist/compare_safetensors.py"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
MPI=("$MPIEXEC" --oversubscribe --bind-to none)
pass=0; failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
final_code() { tail -n 1 "$1" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["exit_code"])' 2>/dev/null; }
python3 "$HERE/make_tiny_dataset.py" "$W/train" --per-class 16
python3 "$HERE/make_tiny_dataset.py" "$W/val" --per-class 4 --seed 1
ARGS=(--config "$HERE/tiny.json" --data "$W/train" --val-data "$W/val" -q)
SGD=(--opt sgd --lr 0.1)
ck() { echo "$W/$1/checkpoints/step-$(printf %08d "$2").safetensors"; }
# run NAME RANKS ARGS...: vit-train under mpirun (RANKS=0: no launcher), stdout/stderr kept
run() {
  local name=$1 np=$2; shift 2
  if [[ $np == 0 ]]; then "$T" "${ARGS[@]}" --out "$W/$name" "$@" >"$W/$name.out" 2>"$W/$name.err"
  else "${MPI[@]}" -np "$np" "$T" "${ARGS[@]}" --out "$W/$name" "$@" >"$W/$name.out" 2>"$W/$name.err"; fi
}
want_rc() { [[ $1 == "$2" ]] && ok || { bad "$3: exit $1, want $2"; tail -n 5 "$W/$3.err"; }; }

# 1. 2 ranks x 4 samples vs 1 process x 8 samples, same global batch, 4 SGD steps. Not bitwise:
# the batch mean is summed in another order (per-rank means of 4, then the 2-rank average), so
# gradients differ by float rounding (~1e-7 relative); SGD is linear in them, so weights stay
# within lr * steps * that, far below the 1e-5 bound used here.
run sgd1 0 "${SGD[@]}" --steps 4; want_rc $? 0 sgd1
run sgd2 2 "${SGD[@]}" --steps 4; want_rc $? 0 sgd2
[[ $(grep -c '"event":"final"' "$W/sgd2.out") == 1 ]] && ok || bad "want one final record on stdout (rank 0 only)"
grep -q '"ranks":2' "$W/sgd2.out" && ok || bad "final record lacks ranks"
$CMP "$(ck sgd1 4)" "$(ck sgd2 4)" --prefix model. --atol 1e-5 && ok || bad "2 ranks vs 1 process (SGD)"

# 2. The same 2-rank run twice (AdamW + Lookahead chain): bitwise, optimizer state included.
LA=(--steps 5 --lookahead-k 2 --set train.checkpoint_every_steps=3)
run la_a 2 "${LA[@]}"; want_rc $? 0 la_a
run la_b 2 "${LA[@]}"; want_rc $? 0 la_b
$CMP "$(ck la_a 5)" "$(ck la_b 5)" && ok || bad "2-rank repeat not bitwise"

# 3. Resume at step 3 with 2 ranks: bitwise equal to the straight run. With 1 rank: the same
# samples per step, float-close (Adam amplifies rounding only in near-zero-gradient entries).
run la_r2 2 "${LA[@]}" --resume "$(ck la_a 3)"; want_rc $? 0 la_r2
$CMP "$(ck la_a 5)" "$(ck la_r2 5)" && ok || bad "2-rank resume not bitwise"
run sgd_c 2 "${SGD[@]}" --steps 5 --set train.checkpoint_every_steps=3; want_rc $? 0 sgd_c
run sgd_r1 0 "${SGD[@]}" --steps 5 --resume "$(ck sgd_c 3)"; want_rc $? 0 sgd_r1
grep -q "written by 2" "$W/sgd_r1.err" && ok || bad "no rank-count warning on a 1-rank resume"
$CMP "$(ck sgd_c 5)" "$(ck sgd_r1 5)" --prefix model. --atol 1e-5 && ok || bad "1-rank resume of a 2-rank run"

# 4. SIGTERM to rank 1 alone: both ranks stop at the same step, rank 0 saves, exit 143.
"${MPI[@]}" -np 2 "$T" "${ARGS[@]}" --out "$W/sig" --steps 1000000 --set train.eval_every_steps=1000000 \
  >"$W/sig.out" 2>"$W/sig.err" & mp=$!
r1=""
for _ in $(seq 100); do
  sleep 0.1
  for p in $(pgrep -P "$mp" 2>/dev/null); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && r1=$p
  done
  [[ -n $r1 && -f $W/sig/metrics.jsonl ]] && grep -q '"event":"train"' "$W/sig/metrics.jsonl" && break
done
if [[ -n $r1 ]]; then
  kill -TERM "$r1"; wait "$mp"; rc=$?
  want_rc $rc 143 sig
  grep -q '"reason":"signal"' "$W/sig.out" && ok || bad "signal: no checkpoint by rank 0"
  [[ $(final_code "$W/sig.out") == 143 ]] && ok || bad "signal: final record exit_code"
else
  bad "signal: rank 1 not found"; kill "$mp" 2>/dev/null; wait "$mp"
fi

# 5. A config that differs on rank 1 (MPMD launch): both ranks exit 78, one final record.
"${MPI[@]}" -np 1 "$T" "${ARGS[@]}" --out "$W/mm" --steps 2 : -np 1 "$T" "${ARGS[@]}" --out "$W/mm" --steps 2 \
  --set train.label_smoothing=0.2 >"$W/mm.out" 2>"$W/mm.err"
want_rc $? 78 mm
[[ $(final_code "$W/mm.out") == 78 ]] && ok || bad "mismatch: final record exit_code"
[[ $(grep -c '^error: ' "$W/mm.err") == 2 ]] && ok || bad "mismatch: want one error line per rank"

# 6. A global batch the ranks do not divide (8 over 3): exit 78 on every rank.
run odd 3 --steps 2; want_rc $? 78 odd
grep -q "divisible by the 3 ranks" "$W/odd.err" && ok || bad "odd batch: message"

echo "$pass passed, $failed failed"
[[ $failed == 0 ]]
