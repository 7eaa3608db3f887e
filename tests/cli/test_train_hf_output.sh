#!/usr/bin/env bash
# What qwen3-train writes is a Hugging Face model directory: after a short three-stage run on 2
# ranks, qwen3-eval scores the final checkpoint (checkpoints/latest) on a few validation windows,
# and tests/python/check_trained_checkpoint.py loads the same directory with AutoConfig and the
# safetensors package into an independent PyTorch Qwen3 and must get the same loss.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4 PYTHON=$5
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 9 400
write_run "$WORK/run.yaml" "$WORK/data" "$WORK/out"
mpi 2 "$WORK/train.log" "$WORK/run.yaml" --set stages.0.steps=8 --set stages.1.steps=6 --set stages.2.steps=2
[[ $status -eq 0 ]] || { fail "training: status $status"; cat "$WORK/train.log"; finish; }
checkpoint=$WORK/out/checkpoints/latest
timeout 300 "$BIN/qwen3-eval" --checkpoint "$checkpoint" --data "val=$WORK/data/shards/val-*.h5" \
  --seq-len 256 --max-samples 6 --micro-batch 2 --bucket-tokens 0 >"$WORK/eval.txt" 2>&1 ||
  { fail "qwen3-eval: status $?"; cat "$WORK/eval.txt"; finish; }
"$PYTHON" "$SRC/tests/python/check_trained_checkpoint.py" --checkpoint "$checkpoint" \
  --shards "$WORK/data/shards/val-*.h5" --seq-len 256 --windows 6 --eval-json "$WORK/eval.txt"
exit $?
