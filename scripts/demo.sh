#!/usr/bin/env bash
# The main job: sets up (packages, build), then trains Qwen3's three-stage recipe in miniature on
# 2 MPI ranks on this CPU (configs/demo.yaml): general text, then code, then long context with the
# RoPE base raised to 1,000,000. The data are files every Debian machine has, fed as bytes. It
# ends with an evaluation report of the final checkpoint and a plot of the loss and LR curves.
# Everything lands in runs/demo/ (data/, out/); a second run starts the training afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build/bin/qwen3-train --describe configs/models/qwen3-0.6b.yaml | head -4

data=runs/demo/data
prep() {  # prep NAME INPUTS...: byte-level shards with a 5% held-out split
  local name=$1
  shift
  [[ -f $data/$name/manifest.json ]] && return
  rm -rf "${data:?}/$name"
  build/bin/qwen3-prep --input-format bytes "$@" --output "$data/$name" --vocab-size 320 \
    --eos-id 256 --tokenizer bytes --val-fraction 0.05 --shard-tokens 4194304 --seed 1
}
echo "== preparing data in $data"
prep text /usr/share/common-licenses /usr/share/doc/*/copyright
prep code /usr/include/*.h

# Open MPI refuses to run as root unless told that it is on purpose (containers, CI).
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# Two ranks on two cores: one thread each.
export OMP_NUM_THREADS=1
rm -rf runs/demo/out
echo "== training: mpirun -np 2 qwen3-train configs/demo.yaml"
mpirun -np 2 --oversubscribe build/bin/qwen3-train configs/demo.yaml

/usr/bin/python3 build/bin/qwen3-plot-metrics runs/demo/out -o runs/demo/out/metrics.png
echo "== loss and LR curves: runs/demo/out/metrics.png; per-step metrics: runs/demo/out/metrics.jsonl"

echo "== evaluating the final checkpoint (a Hugging Face model directory)"
mpirun -np 2 --oversubscribe build/bin/qwen3-eval --backend cpu --checkpoint runs/demo/out/checkpoints/latest \
  --data "text=$data/text/val-*.h5" --data "code=$data/code/val-*.h5" --seq-len 1024 \
  --micro-batch 2 --max-samples 32 --bucket-tokens 256
