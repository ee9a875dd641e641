#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a bounded time on its committed
# seed corpus (tests/fuzz/corpus/<target>); new corpus entries go to a scratch dir, never the repo.
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET=60] [BUILD_DIR=build-fuzz] [TARGET...]
# Longer runs: scripts/fuzz.sh 3600, or by hand:
#   build-fuzz/tests/fuzz/fuzz_decode -max_total_time=3600 -jobs=2 /tmp/corpus tests/fuzz/corpus/fuzz_decode
# A crash writes crash-<sha1> into the current directory; reproduce with `fuzz_decode crash-<sha1>`,
# fix, then commit the input as tests/fuzz/corpus/<target>/regress-<what> (replayed by every run).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; B=${2:-build-fuzz}; shift $(( $# < 2 ? $# : 2 ))
TARGETS=("$@"); [[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(fuzz_decode fuzz_safetensors fuzz_config)
# configure only a fresh dir: scripts/sanitize.sh ci passes its own build-san (tests on)
[[ -f $B/CMakeCache.txt ]] || cmake -S . -B "$B" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DVIT_SANITIZE=address,undefined -DVIT_FUZZ=ON -DVIT_TESTS=OFF -DVIT_BENCH=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" --target "${TARGETS[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
art=${FUZZ_ARTIFACTS:-$PWD/$B/fuzz-artifacts}; mkdir -p "$art"
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$scratch/$t"
  dict=(); [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  log="$B/$t.log"
  if "$B/tests/fuzz/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$art/$t-" "${dict[@]}" "$scratch/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "$t: ok, $(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}') executions in ${SECS}s," \
         "corpus $(ls "$scratch/$t" | wc -l) new + $(ls "tests/fuzz/corpus/$t" | wc -l) seeds"
  else
    status=1
    echo "$t: FAILED (artifacts in $art), last lines of $log:"; tail -n 40 "$log"
  fi
done
exit $status
