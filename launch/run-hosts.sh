#!/usr/bin/env bash
# Training across machines without a scheduler, one rank per GPU, from a hostfile:
#   launch/run-hosts.sh HOSTFILE GPUS_PER_HOST RUN.yaml [qwen3-train options]
# HOSTFILE lists one host per line (Open MPI's format: `node01 slots=8`). Every host needs the
# same paths: this checkout's build/bin (or QWEN3_BIN), the run file and the data, and passwordless
# ssh from here. NCCL_*, UCX_*, CUDA_* and OMP_NUM_THREADS are passed on to every rank; see
# docs/cluster.md for the network settings. Signals are handled as by run-local.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
QWEN3_HOME=${QWEN3_HOME:-$(dirname "$here")}
source "$here/common.sh"

if (($# < 3)) || [[ ! -f $1 ]] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 HOSTFILE GPUS_PER_HOST RUN.yaml [qwen3-train options]" >&2
  exit 2
fi
hostfile=$1 per_host=$2
shift 2
hosts=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile")
if ((hosts < 1)); then
  echo "error: hostfile '$hostfile' names no host" >&2
  exit 2
fi
bin=$(qwen3_bin_dir)
cores_per_rank=${QWEN3_CORES_PER_RANK:-$(($(qwen3_core_count) / per_host))}
((cores_per_rank >= 1)) || cores_per_rank=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores_per_rank}
# shellcheck disable=SC2046  # one word per -x flag and name
qwen3_run_with_stop_forwarding mpirun --hostfile "$hostfile" -np $((hosts * per_host)) \
  --map-by "ppr:$per_host:node:PE=$cores_per_rank" --bind-to core $(qwen3_exported_env) \
  "$bin/qwen3-train" "$@"
