#!/usr/bin/env bash
# Run files that must be refused before any work starts, each with the file, line and dotted key
# (or the --set override) and what is wrong; --dump-config; a run whose updates keep failing
# (non-finite loss) stops after max_nonfinite_steps with the reason; a resume with a run file
# whose stages changed is refused.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 5 300
write_run "$WORK/good.yaml" "$WORK/data" "$WORK/out"

# expect_error NAME NP SED-EXPRESSION MESSAGE-REGEX [ARGS...]: the edited run is refused
expect_error() {
  local name=$1 np=$2 edit=$3 regex=$4
  shift 4
  sed -E "$edit" "$WORK/good.yaml" >"$WORK/$name.yaml"
  mpi "$np" "$WORK/$name.log" "$WORK/$name.yaml" "$@"
  if [[ $status -eq 0 ]]; then
    fail "$name: accepted"; return
  fi
  if ! grep -Eq -- "$regex" "$WORK/$name.log"; then
    fail "$name: message does not match '$regex':"; cat "$WORK/$name.log"; return
  fi
  if [[ -e $WORK/out ]]; then
    fail "$name: the output directory was created before the run was validated"; rm -rf "$WORK/out"; return
  fi
  pass "$name: $(grep -Eo -- "$regex" "$WORK/$name.log" | head -1)"
}

expect_error unknown_key 1 's/^    optimizer: \{lr: 3.0e-3/    optimiser: {lr: 3.0e-3/' \
  "unknown_key.yaml:[0-9]+:5: key 'stages.0.optimiser' unknown stage key \(did you mean 'stages.0.optimizer'\?\)"
expect_error unknown_top 1 's/^seed: 11/sed: 11/' "unknown_top.yaml:4:1: key 'sed' unknown run key \(did you mean 'seed'\?\)"
expect_error wrong_type 1 '0,/seq_len: 64/s//seq_len: sixty-four/' \
  "wrong_type.yaml:[0-9]+:5: key 'stages.0.seq_len' must be an integer, got 'sixty-four'"
expect_error not_divisible 2 's/batch_tokens: 768/batch_tokens: 700/' \
  "key 'stages.0.batch_tokens' 700 is not a multiple of seq_len x micro_batch x ranks = 64 x 2 x 2 = 256"
expect_error too_long 1 's/seq_len: 256/seq_len: 512/; s/batch_tokens: 3072/batch_tokens: 6144/' \
  "key 'stages.2.seq_len' 512 is above the model's max_position_embeddings 256"
expect_error no_files 1 '0,/train-\*/s//nothing-*/' "key 'stages.0.train_data.0.path' '.*nothing-\*.h5' matches no files"
expect_error two_budgets 1 's/^    steps: 8$/    steps: 8\n    tokens: 30000/' "stages.2.(steps|tokens)' give exactly one positive budget"
expect_error missing_key 1 '/^output_dir:/d' "key 'output_dir' is required in the run but missing"
expect_error bad_backend 1 's/^backend: cpu.*/backend: gpu/' "bad_backend.yaml:[0-9]+:[0-9]+: key 'backend' must be cuda or cpu, got 'gpu'"
# Where no GPU can be used, the CUDA backend is refused with the reason and the way out.
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_error no_gpu 1 's/^backend: cpu.*/backend: cuda/' "backend cuda cannot start: .*Set backend: cpu"
fi
expect_error bad_schedule 1 's/schedule: constant/schedule: linear/' "key 'stages.2.optimizer.schedule' unknown schedule 'linear'"
expect_error bad_decay 1 's/carry_state: false/carry_state: false, no_decay: [norms]/' \
  "key 'stages.2.optimizer.no_decay'.*norms"
expect_error set_type 1 '' "--set stages.1.optimizer.lr=fast: key 'stages.1.optimizer.lr' must be a number, got 'fast'" \
  --set stages.1.optimizer.lr=fast
expect_error set_index 1 '' "--set stages.3.seq_len=64: 'stages' is a list of 3 entries; '3' is not an index into it" \
  --set stages.3.seq_len=64
expect_error set_unknown 1 '' "--set stages.0.warmup=4: key 'stages.0.warmup' unknown stage key" --set stages.0.warmup=4
expect_error three_ranks 3 's/batch_tokens: 768/batch_tokens: 1024/' "error on rank 0: .*three_ranks.yaml:16:5: key .stages.0.batch_tokens. 1024 is not a multiple of seq_len x micro_batch x ranks = 64 x 2 x 3"

# --dump-config: validated, overrides applied, and what it prints reads back to the same run.
mpi 1 "$WORK/dump1.yaml" "$WORK/good.yaml" --dump-config --set stages.1.optimizer.lr=2.5e-3
mpi 1 "$WORK/dump2.yaml" "$WORK/dump1.yaml" --dump-config
if [[ $status -eq 0 ]] && cmp -s "$WORK/dump1.yaml" "$WORK/dump2.yaml" && grep -q "lr: 0.0025" "$WORK/dump1.yaml" &&
   grep -q "steps: 24" "$WORK/dump1.yaml" && [[ ! -e $WORK/out ]]; then
  pass "--dump-config applies --set, fills defaults, reads back to itself and starts nothing"
else
  fail "--dump-config"; cat "$WORK/dump1.yaml"
fi

# Non-finite steps: a learning rate of 1e30 wrecks the weights at the first update; every later
# step has a non-finite loss and is skipped, and the third in a row stops the run.
sed -E 's/lr: 3.0e-3, min_lr: 3.0e-4/lr: 1.0e30, min_lr: 0/; s/^log_interval: 4/log_interval: 4\nmax_nonfinite_steps: 2/' \
  "$WORK/good.yaml" >"$WORK/nan.yaml"
mpi 2 "$WORK/nan.log" "$WORK/nan.yaml"
skipped=$(grep -c '"skipped":true' "$WORK/out/metrics.jsonl" 2>/dev/null)
if [[ $status -ne 0 ]] && grep -q "warning: step 2 had a non-finite" "$WORK/nan.log" &&
   grep -q "stopping: 3 steps in a row (global steps 2..4) had a non-finite loss or gradient norm, more than max_nonfinite_steps = 2" "$WORK/nan.log" &&
   [[ $skipped -eq 3 ]]; then
  pass "non-finite steps: 3 skipped and logged, then the run stops (status $status)"
else
  fail "non-finite steps: status $status, $skipped skipped"; cat "$WORK/nan.log"
fi
rm -rf "$WORK/out"

# A resume with a run file whose stage list changed is refused, naming both.
mpi 1 "$WORK/first.log" "$WORK/good.yaml" --stop-at-step 4
sed 's/name: general/name: web/' "$WORK/good.yaml" >"$WORK/renamed.yaml"
mpi 1 "$WORK/renamed.log" "$WORK/renamed.yaml"
[[ $status -ne 0 ]] && grep -q "checkpoint '.*step-00000004' is in stage 1 'general', but .*renamed.yaml has no such stage" "$WORK/renamed.log" &&
  pass "resume with changed stages refused" || { fail "resume with changed stages: status $status"; cat "$WORK/renamed.log"; }
finish
