#!/usr/bin/env bash
# Sets up (packages, build) and runs the whole test suite: unit tests, finite-difference checks,
# PyTorch parity, command-line tests. GPU tests skip, saying so, where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
QWEN3_WITH_TEST_TOOLS=1 bash scripts/setup.sh
cd build
ctest --output-on-failure "$@"
