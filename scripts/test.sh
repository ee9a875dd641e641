#!/usr/bin/env bash
# Configure, build and run the whole test suite (what CI runs). Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release
cmake --build "$B" -j"$(nproc)"
ctest --test-dir "$B" --output-on-failure -j"$(nproc)"
