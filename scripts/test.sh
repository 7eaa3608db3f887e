#!/usr/bin/env bash
# Sets up (packages, build) and runs the whole test suite: unit tests, finite-difference checks,
# PyTorch parity, command-line tests. GPU tests skip, saying so, where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
QWEN3_WITH_TEST_TOOLS=1 bash scripts/setup.sh
cd build
# As many tests at a time as there are cores; tests that need the whole machine run alone
# (RUN_SERIAL). Arguments after ours win (e.g. -j1).
ctest --output-on-failure -j "$(nproc)" "$@"
