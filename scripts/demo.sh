#!/usr/bin/env bash
# The main job: sets up (packages, build), then describes Qwen3-0.6B — its parameter table and the
# memory a training replica needs. Later capabilities (training the curriculum) extend this job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build/bin/qwen3-train --describe configs/models/qwen3-0.6b.yaml
