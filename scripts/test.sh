#!/usr/bin/env bash
# Build and run the whole test suite (what CI runs). Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
bash scripts/build.sh "$B"
ctest --test-dir "$B" --output-on-failure -j"$(nproc)"
