#!/usr/bin/env bash
# Sanitizer runs (RELIABILITY.md §5 G.76), clang-14 only:
#   asan : -fsanitize=address,undefined -fno-sanitize-recover=all (build-san, which also holds the
#          libFuzzer targets), then the whole ctest suite: unit tests and the CLI shell tests, the
#          latter over sanitized vit-train/vit-eval.
#   ci   : the same build dir, but only the tests of the code that reads untrusted input or runs
#          parallel kernels (labels core, data, train, kernels), then every fuzzer for
#          FUZZ_SECONDS (default 60) each via scripts/fuzz.sh. This is what .ci/run calls.
#   tsan : -fsanitize=thread with libomp (Archer), kernel and core tests only (build-tsan). gcc +
#          libgomp gives false reports, so TSan never runs with it (§1.7).
# usage: scripts/sanitize.sh [asan|ci|tsan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
J=$(nproc)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
[[ -x /usr/bin/llvm-symbolizer-14 ]] && export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
tests_of() {  # test target names of the given areas (tests/<area>/test_<name>.cpp)
  (cd tests && for a in "$@"; do ls "$a"/test_*.cpp 2>/dev/null; done) | sed -E 's|^(\w+)/test_(\w+)\.cpp$|test_\1_\2|'
}
configure_san() {
  cmake -S . -B build-san -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DVIT_SANITIZE=address,undefined -DVIT_FUZZ=ON -DVIT_BENCH=OFF >/dev/null
}
if [[ $what == asan || $what == all ]]; then
  configure_san
  cmake --build build-san -j"$J"
  ctest --test-dir build-san --output-on-failure -j"$J" --timeout 1800 -LE '^mpi$'
  # MPI runs: OpenMPI keeps allocations until exit, in plugins it dlcloses. Keep the plugins
  # loaded and unwind fully, so lsan.supp can name those libraries; our own leaks still fail.
  ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 OMPI_MCA_mca_base_component_disable_dlclose=1 \
    ctest --test-dir build-san --output-on-failure -j"$J" --timeout 1800 -L '^mpi$'
fi
if [[ $what == ci ]]; then
  configure_san
  mapfile -t tests < <(tests_of core data train kernels)
  cmake --build build-san -j"$J" --target "${tests[@]}" fuzz_decode fuzz_safetensors fuzz_config
  ctest --test-dir build-san --output-on-failure -j"$J" -L '^(core|data|train|kernels)$' --timeout 900
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}" build-san
fi
if [[ $what == tsan || $what == all ]]; then
  # The kernels dispatch AVX2 through target_clones (ifunc): the dynamic loader runs the resolvers
  # before TSan is initialised, so an instrumented function entry there segfaults at start-up.
  # Function entry/exit hooks are therefore off (reports keep the access site, lose deeper
  # frames); memory accesses stay instrumented. Tests are discovered at ctest time.
  cmake -S . -B build-tsan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="-mllvm -tsan-instrument-func-entry-exit=false" \
    -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST -DVIT_SANITIZE=thread -DVIT_BENCH=OFF >/dev/null
  mapfile -t tests < <(tests_of kernels core)
  cmake --build build-tsan -j"$J" --target "${tests[@]}"
  # Archer (libarcher.so, libomp-dev) tells TSan about OpenMP's synchronisation; two threads so
  # the parallel regions really run concurrently on a 2-core CI box.
  TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=1" OMP_NUM_THREADS=2 \
    ctest --test-dir build-tsan --output-on-failure -j1 -L '^(kernels|core)$' --timeout 1800
fi
