#!/usr/bin/env bash
# A three-stage tiny curriculum on 2 ranks: the stages run in order with their own sequence
# lengths, RoPE bases, schedules and ZeRO stages; the loss falls in every stage; every step is in
# metrics.jsonl with the required keys; each stage ends with an evaluation and a checkpoint whose
# config.json carries the stage's RoPE base; retention keeps the newest and every stage's last.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 5 600
write_run "$WORK/run.yaml" "$WORK/data" "$WORK/out"

mpi 2 "$WORK/train.log" "$WORK/run.yaml"
[[ $status -eq 0 ]] && pass "three stages on 2 ranks exit 0" || { fail "exit status $status"; cat "$WORK/train.log"; finish; }
log=$(cat "$WORK/train.log")
for want in "stage 1/3 'general': 24 steps of 768 tokens \(12 sequences of 64; 6 per rank as 3 micro-batches of 2\), RoPE base 10000, ZeRO 1, cosine.*; fp32 gradients reduced in 25 MiB buckets during the backward pass; attention: cpu$" \
            "stage 2/3 'code': 12 steps of 1536 tokens \(12 sequences of 128; .*RoPE base 10000, ZeRO 1, wsd schedule, optimizer state: .*step-00000024; fp32 gradients reduced after the backward pass" \
            "stage 3/3 'long': 8 steps of 3072 tokens \(12 sequences of 256; .*RoPE base 1000000, ZeRO 2, constant schedule, optimizer state: fresh; fp32 gradients reduced in 0.05 MiB buckets during the backward pass" \
            "eval \[general\] step 12 \| val: loss" "eval \[code\] step 12 \| val: loss" \
            "run 'tiny-curriculum' complete: 44 steps"; do
  grep -Eq -- "$want" <<<"$log" && pass "log: $want" || fail "log lacks: $want"
done

metrics=$WORK/out/metrics.jsonl
train_lines=$(grep -c '"kind":"train"' "$metrics")
[[ $train_lines -eq 44 ]] && pass "metrics.jsonl: 44 train lines" || fail "metrics.jsonl has $train_lines train lines, want 44"
missing=$(grep '"kind":"train"' "$metrics" | grep -Ev '"grad_norm":[0-9.e-]+.*"loss":[0-9.e-]+,"lr":[0-9.e-]+.*"stage":[123],.*"step":[0-9]+.*"tokens":[0-9]+')
[[ -z $missing ]] && pass "every train line has stage, step, loss, lr, grad_norm, tokens" || fail "lines without the required keys: $missing"

check_loss_falls_per_stage "$metrics" "" 1 2 3

ck=$WORK/out/checkpoints
for pair in 24:10000 36:10000 44:1000000; do
  step=${pair%%:*} theta=${pair##*:}
  dir=$ck/$(printf 'step-%08d' "$step")
  grep -q "\"rope_theta\": $theta," "$dir/config.json" 2>/dev/null &&
    pass "stage-end checkpoint $step has rope_theta $theta" || fail "$dir/config.json lacks rope_theta $theta"
  grep -q "stage_complete: true" "$dir/trainer_state.yaml" 2>/dev/null || fail "$dir is not marked as a stage end"
done
kept=$(cd "$ck" && ls -d step-* | tr '\n' ' ')
# Written: 8, 16, 24 (end of 'general'), 32, 36 (end of 'code'), 44 (the end); keep_last 2.
grep -q "checkpoint .*step-00000032 written" "$WORK/train.log" || fail "no checkpoint at step 32"
[[ $kept == "step-00000024 step-00000036 step-00000044 " ]] &&
  pass "retention kept: $kept" || fail "retention kept: $kept (want the two newest, 36 and 44, and the stage end 24)"
[[ $(readlink "$ck/latest") == step-00000044 ]] && pass "latest -> step-00000044" || fail "latest -> $(readlink "$ck/latest")"
ls "$ck/step-00000044/optimizer/" | grep -q 'shard-00001-of-00002.h5' && pass "ZeRO optimizer state in one shard per rank" || fail "no per-rank optimizer shards"

# A finished run started again has nothing to do and says so.
mpi 2 "$WORK/again.log" "$WORK/run.yaml"
[[ $status -eq 0 ]] && grep -q "every stage of .* is already done" "$WORK/again.log" &&
  pass "a finished run restarted does nothing" || { fail "restart of a finished run: status $status"; cat "$WORK/again.log"; }
finish
