#!/usr/bin/env bash
# The CUDA path on this machine's GPUs, in one command: builds a Release tree for this GPU's
# architecture, runs the CUDA tests, the NCCL data-parallel run, the kernel roofline table, the
# training step against PyTorch and the Hugging Face round trip, each under its own time limit,
# and writes OUT/report.md and OUT/report.json. Without a GPU it says so and exits 0.
#
#   scripts/gpu-check.sh [--out DIR] [--quick] [--plan] [--build-dir B] [--deps PREFIX
#                        [--debs DEBDIR]] [--python PY] [--steps a,b] [--budget S] [--ranks N]
#
# The steps are in scripts/gpu_check.py (standard-library Python, so nothing needs installing
# first). The Python that runs it is also the one the comparisons use: --python, else
# $QWEN3_PYTHON, else the first python3 on PATH that imports torch, else /usr/bin/python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

python=${QWEN3_PYTHON:-}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --python && $((i + 1)) -lt ${#args[@]} ]] && python=${args[i + 1]}
  [[ ${args[i]} == --python=* ]] && python=${args[i]#--python=}
done
if [[ -z $python ]]; then
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c "import torch" 2>/dev/null; then
      python=$(command -v "$candidate")
      break
    fi
  done
fi
if [[ -z $python ]]; then
  python=$(command -v python3 || true)
  [[ -n $python ]] || { echo "gpu-check: no python3 on PATH" >&2; exit 1; }
fi
exec "$python" "$here/gpu_check.py" --python "$python" "$@"
