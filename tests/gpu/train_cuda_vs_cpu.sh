#!/usr/bin/env bash
# gpu-check step b: the tiny three-stage curriculum of the CLI tests trained on the CUDA backend,
# one rank per GPU (NCCL: a one-rank communicator on a single GPU), against the same run on the
# fp32 CPU backend on as many ranks. The curriculum reduces gradients in one bucket during the
# backward pass, after it, and in three 0.05 MiB buckets on the side stream (ZeRO 1 then 2), so
# the overlapped bucketed reduction runs. Each train and eval loss of the CUDA run must be within
# TOL (relative, default 5%: bf16 storage against fp32 over 44 steps) of the CPU run's, the loss
# must fall in every stage, and the final checkpoint is left in WORK/candidate/checkpoints/latest for
# the Hugging Face step.
#   train_cuda_vs_cpu.sh BIN MPIEXEC SRC WORK RANKS [TOL] [BACKEND] [CANDIDATE_BIN]
# BACKEND (default cuda) is the run compared with the CPU one; ctest runs the script with cpu, to
# keep it working where there is no GPU. CANDIDATE_BIN (default BIN) holds the qwen3-train of that
# run: the emulated device's build (bin-emulated) runs it with cuda where there is no GPU.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4 RANKS=$5 TOL=${6:-0.05} BACKEND=${7:-cuda}
CANDIDATE_BIN=${8:-$BIN} REFERENCE_BIN=$BIN
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 5 600

# Three accumulation steps of every stage's micro-batch on each rank, whatever the rank count.
sizes=(--set "stages.0.batch_tokens=$((64 * 2 * 3 * RANKS))"
       --set "stages.1.batch_tokens=$((128 * 2 * 3 * RANKS))"
       --set "stages.2.batch_tokens=$((256 * 1 * 3 * RANKS))")
# WORK/reference: the CPU run; WORK/candidate: the BACKEND run.
for run in reference candidate; do
  backend=cpu BIN=$REFERENCE_BIN
  [[ $run == candidate ]] && backend=$BACKEND BIN=$CANDIDATE_BIN
  write_run "$WORK/$run.yaml" "$WORK/data" "$WORK/$run"
  mpi "$RANKS" "$WORK/$run.log" "$WORK/$run.yaml" --set "backend=$backend" "${sizes[@]}"
  if [[ $status -eq 0 ]]; then
    pass "$backend backend on $RANKS rank(s): the curriculum completes"
  else
    fail "$backend backend on $RANKS rank(s): status $status"
    tail -40 "$WORK/$run.log"
    finish
  fi
done
if [[ $BACKEND == cuda ]]; then
  grep -q "gradients over NCCL" "$WORK/candidate.log" && pass "the CUDA run reduces through NCCL" ||
    fail "the CUDA run's log does not say its gradients go over NCCL"
fi

# "kind step loss" of every train and eval record, in file order (metrics.jsonl's keys are sorted).
losses() {
  sed -E 's/.*"kind":"([a-z]*)".*"loss":([^,}]*).*"step":([0-9]*).*/\1 \3 \2/' "$1"
}
losses "$WORK/reference/metrics.jsonl" >"$WORK/reference.losses"
losses "$WORK/candidate/metrics.jsonl" >"$WORK/candidate.losses"
# The largest relative difference and where it is, or "mismatch ..." when the records differ.
worst=$(paste -d' ' "$WORK/reference.losses" "$WORK/candidate.losses" | awk '
  NF != 6 || $1 != $4 || $2 != $5 { print "mismatch at line " NR ": " $0; bad = 1; exit }
  { r = ($6 - $3) / $3; if (r < 0) r = -r; if (r >= worst) { worst = r; at = $1 " step " $2 } }
  END { if (!bad) printf "%.6f (%s)\n", worst, at }')
records=$(wc -l <"$WORK/reference.losses")
if [[ $records -gt 40 && $(wc -l <"$WORK/candidate.losses") -eq $records ]] &&
   [[ $worst =~ ^[0-9.]+\  ]] && awk -v w="${worst%% *}" -v tol="$TOL" 'BEGIN {exit !(w <= tol)}'; then
  pass "$records losses: $BACKEND within $TOL of CPU (largest relative difference $worst)"
else
  fail "losses: $BACKEND against CPU: $worst ($records records); see $WORK/{reference,candidate}.losses"
fi

check_loss_falls_per_stage "$WORK/candidate/metrics.jsonl" "$BACKEND " 1 2 3
[[ -f $WORK/candidate/checkpoints/latest/model.safetensors ]] &&
  pass "final checkpoint: $WORK/candidate/checkpoints/latest" || fail "no final checkpoint in $WORK/candidate"
finish
