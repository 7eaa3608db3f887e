#!/usr/bin/env bash
# The plain-mpirun launch scripts: launch/run-local.sh trains a run to the end on 2 ranks; the
# same run through launch/run-hosts.sh (a hostfile naming this machine) is stopped by SIGTERM to
# the script, which must reach the ranks as a checkpoint request (mpirun itself would count a
# SIGTERM as failure), exit 0, and resume on a second start to the same final weights.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
export QWEN3_BIN=$BIN OMP_NUM_THREADS=1
make_data "$WORK/data" 7 600
long_run() {  # 60 + 12 + 1 steps, checkpoints only at stage ends
  write_run "$1" "$WORK/data" "$2"
  sed -i 's/^    steps: 24$/    steps: 60/; s/^    checkpoint_interval: 8$/    checkpoint_interval: 0/' "$1"
}
short_long_stage=(--set stages.2.steps=0 --set stages.2.tokens=3072)
final=checkpoints/step-00000073
state_files="model.safetensors optimizer/shard-00000-of-00002.h5 optimizer/shard-00001-of-00002.h5"

long_run "$WORK/local.yaml" "$WORK/local"
timeout 300 "$SRC/launch/run-local.sh" 2 "$WORK/local.yaml" "${short_long_stage[@]}" >"$WORK/local.log" 2>&1
status=$?
[[ $status -eq 0 && -f $WORK/local/$final/model.safetensors ]] &&
  pass "run-local.sh 2: the run completed (step 73)" ||
  { fail "run-local.sh: status $status"; cat "$WORK/local.log"; finish; }

echo "localhost slots=2" >"$WORK/hostfile"
long_run "$WORK/hosts.yaml" "$WORK/hosts"
timeout 300 "$SRC/launch/run-hosts.sh" "$WORK/hostfile" 2 "$WORK/hosts.yaml" "${short_long_stage[@]}" \
  >"$WORK/hosts.log" 2>&1 &
script=$!
for _ in $(seq 600); do
  (($(grep -c '"kind":"train"' "$WORK/hosts/metrics.jsonl" 2>/dev/null || true) >= 10)) && break
  sleep 0.2
done
pkill -TERM -P "$script"  # $script is timeout; its child is run-hosts.sh
wait "$script"
status=$?
step=$(sed -nE 's/.*checkpoint .*step-0*([0-9]+) written.*/\1/p' "$WORK/hosts.log" | tail -1)
[[ $status -eq 0 ]] && grep -q "SIGTERM received: asking every rank to checkpoint and stop" "$WORK/hosts.log" &&
  [[ -n $step && $step -ge 10 && $step -lt 73 ]] &&
  pass "run-hosts.sh: SIGTERM to the script gave exit 0 and a checkpoint of step $step" ||
  { fail "run-hosts.sh stop: status $status, checkpoint '$step'"; cat "$WORK/hosts.log"; finish; }
timeout 300 "$SRC/launch/run-hosts.sh" "$WORK/hostfile" 2 "$WORK/hosts.yaml" "${short_long_stage[@]}" \
  >"$WORK/hosts-resume.log" 2>&1
status=$?
[[ $status -eq 0 ]] && grep -q "resuming from .*step-$(printf '%08d' "$step")" "$WORK/hosts-resume.log" &&
  pass "run-hosts.sh: the second start resumed from step $step and completed" ||
  { fail "run-hosts.sh resume: status $status"; cat "$WORK/hosts-resume.log"; }
same_files "$WORK/local/$final" "$WORK/hosts/$final" $state_files &&
  pass "final weights and optimizer shards byte-identical to the uninterrupted run-local.sh run" ||
  fail "the stopped and resumed run ends differently from the uninterrupted one"

"$SRC/launch/run-local.sh" 0 "$WORK/local.yaml" >/dev/null 2>&1
[[ $? -eq 2 ]] && pass "run-local.sh refuses 0 GPUs with usage (exit 2)" || fail "run-local.sh 0 GPUs accepted"
QWEN3_BIN=$WORK/nowhere "$SRC/launch/run-local.sh" 1 "$WORK/local.yaml" 2>"$WORK/nobin.log"
[[ $? -ne 0 ]] && grep -q "no qwen3-train in '$WORK/nowhere'" "$WORK/nobin.log" &&
  pass "a missing build is named" || fail "missing build: $(cat "$WORK/nobin.log")"
finish
