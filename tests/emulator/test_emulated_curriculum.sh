#!/usr/bin/env bash
# The whole CUDA path without a GPU: the tiny three-stage curriculum with backend: cuda on 2
# emulated ranks (bin-emulated/qwen3-train: the trainer built against the emulated runtime,
# cuBLASLt and NCCL), with the reduction overlapped in buckets and ZeRO 1 then 2.
#   1. against the CPU backend's run on the same data (gpu-check's own comparison script): every
#      loss within 5%, the loss falling in every stage, the gradients going over NCCL;
#   2. stopped after step 13 and after step 30 and resumed: the metrics and the final weights and
#      optimizer shards bit-identical to the uninterrupted run;
#   3. qwen3-eval --backend cuda on its final checkpoint against qwen3-eval --backend cpu.
# ORDER is the emulated streams' order (latest: work runs as late as the synchronisation allows;
# eager: at once). PARTS: all, or compare (part 1 only: the second order's run).
#   test_emulated_curriculum.sh BIN EMULATED_BIN MPIEXEC SRC WORK ORDER [PARTS]
BIN=$1 EMULATED_BIN=$2 MPIEXEC=$3 SRC=$4 WORK=$5 ORDER=$6 PARTS=${7:-all}
CPU_BIN=$BIN
export QWEN3_EMULATED_STREAM_ORDER=$ORDER
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"

# 1. The emulated CUDA run against the CPU's.
if bash "$SRC/tests/gpu/train_cuda_vs_cpu.sh" "$BIN" "$MPIEXEC" "$SRC" "$WORK/compare" 2 0.05 cuda \
  "$EMULATED_BIN" >"$WORK/compare.out" 2>&1; then
  pass "emulated CUDA on 2 ranks against CPU ($ORDER order): $(grep -o 'largest relative difference [^)]*)' "$WORK/compare.out")"
else
  fail "emulated CUDA against CPU ($ORDER order):"
  cat "$WORK/compare.out"
  finish
fi
uninterrupted=$WORK/compare/candidate
[[ $PARTS == compare ]] && finish

# 2. Stopped twice and resumed, on the emulated device, with the comparison's settings (its stage
# 3 batch: 3 micro-batches of 256 tokens on each of the 2 ranks).
BIN=$EMULATED_BIN
write_run "$WORK/resumed.yaml" "$WORK/compare/data" "$WORK/resumed"
settings=(--set backend=cuda --set stages.2.batch_tokens=1536)
mpi 2 "$WORK/resumed1.log" "$WORK/resumed.yaml" "${settings[@]}" --stop-at-step 13
[[ $status -eq 0 ]] || { fail "stop at 13: status $status"; tail -30 "$WORK/resumed1.log"; finish; }
# attention: auto (the stages' default) on a build without cuDNN: our kernels, the reason in the
# banner, no warning (nothing was asked for by name).
if grep -q "; attention: flash (cuDNN: this build has no cuDNN" "$WORK/resumed1.log" &&
  ! grep -q "warning: stage .* asked for attention" "$WORK/resumed1.log"; then
  pass "stage banner: attention: flash, with why not cuDNN"
else
  fail "stage banner lacks 'attention: flash (cuDNN: ...)', or warns: $(grep -m1 "stage 1/3" "$WORK/resumed1.log")"
fi
mpi 2 "$WORK/resumed2.log" "$WORK/resumed.yaml" "${settings[@]}" --stop-at-step 30
grep -q "resuming from .*step-00000013" "$WORK/resumed2.log" || fail "did not resume from step 13"
mpi 2 "$WORK/resumed3.log" "$WORK/resumed.yaml" "${settings[@]}"
[[ $status -eq 0 ]] && grep -q "resuming from .*step-00000030" "$WORK/resumed3.log" ||
  { fail "resume from 30: status $status"; tail -30 "$WORK/resumed3.log"; }
loss_sequence "$uninterrupted/metrics.jsonl" >"$WORK/uninterrupted.seq"
loss_sequence "$WORK/resumed/metrics.jsonl" >"$WORK/resumed.seq"
if cmp -s "$WORK/uninterrupted.seq" "$WORK/resumed.seq"; then
  pass "resumed twice: $(wc -l <"$WORK/resumed.seq") metric lines bit-identical to the uninterrupted run"
else
  fail "resumed run's metrics differ:"
  diff "$WORK/uninterrupted.seq" "$WORK/resumed.seq" | head
fi
final=checkpoints/step-00000044
same_files "$uninterrupted/$final" "$WORK/resumed/$final" model.safetensors \
  optimizer/shard-00000-of-00002.h5 optimizer/shard-00001-of-00002.h5 &&
  pass "final weights and optimizer shards byte-identical to the uninterrupted run" ||
  fail "final checkpoint files differ from the uninterrupted run's"

# 3. Evaluation of the final checkpoint on the emulated device and on the CPU.
eval_args=(--checkpoint "$uninterrupted/$final" --data "val=$WORK/compare/data/shards/val-*.h5"
           --seq-len 64 --max-samples 8 --micro-batch 2)
"$EMULATED_BIN/qwen3-eval" --backend cuda "${eval_args[@]}" >"$WORK/eval_cuda.out" 2>&1 ||
  { fail "qwen3-eval --backend cuda: status $?"; tail -20 "$WORK/eval_cuda.out"; finish; }
"$CPU_BIN/qwen3-eval" --backend cpu "${eval_args[@]}" >"$WORK/eval_cpu.out" 2>&1 ||
  fail "qwen3-eval --backend cpu: status $?"
mean_loss() {  # the "loss" of qwen3-eval's last line, a JSON object
  python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["loss"])' "$1"
}
cuda_loss=$(mean_loss "$WORK/eval_cuda.out") cpu_loss=$(mean_loss "$WORK/eval_cpu.out")
awk -v a="$cuda_loss" -v b="$cpu_loss" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; exit !(a + 0 == a && b > 0 && d < 0.02) }' &&
  pass "qwen3-eval --backend cuda: loss $cuda_loss, CPU $cpu_loss" ||
  fail "qwen3-eval: cuda loss '$cuda_loss' against CPU '$cpu_loss'"
finish
