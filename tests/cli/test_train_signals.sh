#!/usr/bin/env bash
# Graceful stops, as Slurm asks for them before a time limit:
#   SIGUSR1 to mpirun (which forwards it to every rank; what `--signal=B:USR1@...` plus a trap in
#   the batch script does), and SIGTERM to each rank directly (what Slurm sends to srun's tasks).
# Either way every rank stops after the same step, a checkpoint of that step is written, the job
# exits 0, and a rerun resumes from it and ends bit-identical to an uninterrupted run.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 5 600
# One stage long enough to be interrupted (a few seconds), checkpoints only at its end.
long_run() {
  write_run "$1" "$WORK/data" "$2"
  sed -i 's/^    steps: 24$/    steps: 120/; s/^    checkpoint_interval: 8$/    checkpoint_interval: 0/' "$1"
}
final=checkpoints/step-00000133  # 120 + 12 + 1 steps
state_files="model.safetensors optimizer/shard-00000-of-00002.h5 optimizer/shard-00001-of-00002.h5"
long_run "$WORK/ref.yaml" "$WORK/ref"
mpi 2 "$WORK/ref.log" "$WORK/ref.yaml" --set stages.2.steps=0 --set stages.2.tokens=3072
[[ $status -eq 0 ]] || { fail "reference run: status $status"; cat "$WORK/ref.log"; finish; }

interrupt() {  # interrupt NAME HOW: start a run, signal it once 10 steps are logged, wait for it
  local name=$1 how=$2
  long_run "$WORK/$name.yaml" "$WORK/$name"
  timeout 300 "$MPIEXEC" -n 2 --oversubscribe "$BIN/qwen3-train" "$WORK/$name.yaml" \
    --set stages.2.steps=0 --set stages.2.tokens=3072 >"$WORK/$name.log" 2>&1 &
  local job=$! waited=0
  until [[ $(cat "$WORK/$name/metrics.jsonl" 2>/dev/null | grep -c '"kind":"train"') -ge 10 ]]; do
    sleep 0.2
    waited=$((waited + 1))
    ((waited < 600)) || break
  done
  if [[ $how == usr1-to-mpirun ]]; then
    pkill -USR1 -P "$job"  # $job is timeout; its child is mpirun
  else
    pkill -TERM -f "^$BIN/qwen3-train $WORK/$name.yaml"  # the ranks, not mpirun
  fi
  wait "$job"
  status=$?
}

for how in usr1-to-mpirun term-to-ranks; do
  interrupt "$how" "$how"
  signal=$([[ $how == usr1* ]] && echo SIGUSR1 || echo SIGTERM)
  step=$(sed -nE 's/.*checkpoint .*step-0*([0-9]+) written.*/\1/p' "$WORK/$how.log" | tail -1)
  if [[ $status -eq 0 ]] && grep -q "$signal received: writing a checkpoint and stopping" "$WORK/$how.log" &&
     [[ -n $step && $step -ge 10 && $step -lt 133 ]]; then
    pass "$how: exit 0 with a checkpoint of step $step"
  else
    fail "$how: status $status, checkpoint step '${step}'"; cat "$WORK/$how.log"; continue
  fi
  lines=$(grep -c '"kind":"train"' "$WORK/$how/metrics.jsonl")
  [[ $lines -eq $step ]] && pass "$how: both ranks stopped after step $step (metrics has $lines steps)" ||
    fail "$how: metrics has $lines steps, checkpoint is of step $step"
  mpi 2 "$WORK/$how-resume.log" "$WORK/$how.yaml" --set stages.2.steps=0 --set stages.2.tokens=3072
  [[ $status -eq 0 ]] && grep -q "resuming from .*step-$(printf '%08d' "$step")" "$WORK/$how-resume.log" &&
    pass "$how: resumed from step $step" || { fail "$how: resume status $status"; cat "$WORK/$how-resume.log"; }
  same_files "$WORK/ref/$final" "$WORK/$how/$final" $state_files &&
    pass "$how: final weights and optimizer shards byte-identical to the uninterrupted run" ||
    fail "$how: final checkpoint differs from the uninterrupted run"
done
finish
