#!/usr/bin/env bash
# Training on one machine, one rank per GPU, without a scheduler:
#   launch/run-local.sh GPUS RUN.yaml [qwen3-train options]
#   launch/run-local.sh 8 configs/stage1.yaml --set stages.0.optimizer.lr=2e-4
# Ranks are bound to equal, disjoint sets of cores (NUMA locality for the loader threads); rank r
# uses GPU r. `kill -USR1` or `kill` (SIGTERM) on this script writes a checkpoint and stops; run it
# again to resume. QWEN3_BIN overrides where the programs are (default: this checkout's build/bin).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
QWEN3_HOME=${QWEN3_HOME:-$(dirname "$here")}
source "$here/common.sh"

if (($# < 2)) || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 GPUS RUN.yaml [qwen3-train options]" >&2
  exit 2
fi
ranks=$1
shift
bin=$(qwen3_bin_dir)
cores=$(qwen3_core_count)
cores_per_rank=$((cores / ranks))
if ((cores_per_rank < 1)); then
  echo "error: $ranks ranks on $cores cores; use at most $cores" >&2
  exit 2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores_per_rank}
qwen3_run_with_stop_forwarding mpirun -np "$ranks" --map-by "ppr:$ranks:node:PE=$cores_per_rank" \
  --bind-to core "$bin/qwen3-train" "$@"
