#!/usr/bin/env bash
# What qwen3-train writes is a Hugging Face model directory: after a short three-stage run on 2
# ranks, qwen3-eval scores the final checkpoint (checkpoints/latest) on a few validation windows,
# and tests/python/check_trained_checkpoint.py loads the same directory with AutoConfig and the
# safetensors package into an independent PyTorch Qwen3 and must get the same loss. Then the way
# back: the same weights saved with lm_head.weight (as some exports of tied models have them)
# score the same, and a run whose model is that directory starts from those weights.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4 PYTHON=$5
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 9 400
write_run "$WORK/run.yaml" "$WORK/data" "$WORK/out"
mpi 2 "$WORK/train.log" "$WORK/run.yaml" --set stages.0.steps=8 --set stages.1.steps=6 --set stages.2.steps=2
[[ $status -eq 0 ]] || { fail "training: status $status"; cat "$WORK/train.log"; finish; }
checkpoint=$WORK/out/checkpoints/latest
timeout 300 "$BIN/qwen3-eval" --backend cpu --checkpoint "$checkpoint" --data "val=$WORK/data/shards/val-*.h5" \
  --seq-len 256 --max-samples 6 --micro-batch 2 --bucket-tokens 0 >"$WORK/eval.txt" 2>&1 ||
  { fail "qwen3-eval: status $?"; cat "$WORK/eval.txt"; finish; }
"$PYTHON" "$SRC/tests/python/check_trained_checkpoint.py" --checkpoint "$checkpoint" \
  --shards "$WORK/data/shards/val-*.h5" --seq-len 256 --windows 6 --eval-json "$WORK/eval.txt" \
  --copy-with-head "$WORK/with_head"
status=$?
[[ $status -eq 0 ]] || exit $status

timeout 300 "$BIN/qwen3-eval" --backend cpu --checkpoint "$WORK/with_head" --data "val=$WORK/data/shards/val-*.h5" \
  --seq-len 256 --max-samples 6 --micro-batch 2 --bucket-tokens 0 >"$WORK/eval_head.txt" 2>&1
loss=$(tail -1 "$WORK/eval.txt" | grep -o '"loss":[^,]*' | head -1)
[[ -n $loss && $(tail -1 "$WORK/eval_head.txt" | grep -o '"loss":[^,]*' | head -1) == "$loss" ]] &&
  pass "the copy with lm_head.weight scores the same ($loss)" || { fail "copy with lm_head.weight"; cat "$WORK/eval_head.txt"; }

# A run from the HF directory: model names it, so its weights start the run; its first loss is
# the trained model's (about 6.4 here), not a fresh initialisation's ln(1024) = 6.93.
sed -E "s|^model: .*|model: $WORK/with_head|; s|^output_dir: .*|output_dir: $WORK/from_hf|" "$WORK/run.yaml" >"$WORK/from_hf.yaml"
mpi 2 "$WORK/from_hf.log" "$WORK/from_hf.yaml" --set stages.0.steps=4 --set stages.1.steps=6 --set stages.2.steps=1
first=$(grep -m1 '"kind":"train"' "$WORK/from_hf/metrics.jsonl" 2>/dev/null | sed -E 's/.*"loss":([^,]*).*/\1/')
if [[ $status -eq 0 ]] && grep -q "starting from the weights in $WORK/with_head" "$WORK/from_hf.log" &&
   awk -v l="$first" 'BEGIN {exit !(l < 6.6)}'; then
  pass "a run with model: <HF directory> starts from its weights (first loss $first)"
else
  fail "run from the HF directory: status $status, first loss '$first'"; cat "$WORK/from_hf.log"
fi
finish
