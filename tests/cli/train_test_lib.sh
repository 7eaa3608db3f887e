#!/usr/bin/env bash
# Shared by the qwen3-train tests (sourced): learnable synthetic data, a tiny three-stage run file,
# mpirun with a time limit, and checks that print what they compared.
#   BIN      build/bin with qwen3-train and qwen3-prep
#   MPIEXEC  mpirun
#   SRC      the repository (configs/models/tiny.yaml)
#   WORK     a fresh directory for this test
set -uo pipefail
failures=0

fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
pass() { echo "ok   $*"; }
finish() {
  if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

# Documents of arithmetic progressions modulo 1000 (start and stride random): a model can learn
# them, so the loss falls within a few dozen steps, as the tests require of every stage.
make_data() {  # make_data DIR SEED DOCUMENTS
  local dir=$1 seed=$2 docs=$3
  mkdir -p "$dir"
  awk -v seed="$seed" -v docs="$docs" 'BEGIN {
    srand(seed)
    for (d = 0; d < docs; d++) {
      a = int(rand() * 1000); s = 1 + int(rand() * 4); n = 40 + int(rand() * 200); line = ""
      for (k = 0; k < n; k++) line = line (k ? " " : "") ((a + k * s) % 1000)
      print line
    }
  }' >"$dir/docs.txt"
  "$BIN/qwen3-prep" --input "$dir/docs.txt" --output "$dir/shards" --vocab-size 1024 --eos-id 1000 \
    --tokenizer synthetic --val-fraction 0.1 --shard-tokens 30000 >/dev/null ||
    { echo "qwen3-prep failed"; exit 1; }
}

# A three-stage run of the tiny model: seq_len 64 -> 128 -> 256 and RoPE base 10,000 -> 10,000 ->
# 1,000,000 (Qwen3's long-context switch), 12 sequences per step, checkpoints every 8 steps. The
# gradients are reduced in one bucket during the backward pass (the default 25 MiB holds the whole
# tiny model), after it, and in three buckets (0.05 MiB: one per layer).
write_run() {  # write_run FILE DATA_DIR OUTPUT_DIR
  cat >"$1" <<YAML
name: tiny-curriculum
model: $SRC/configs/models/tiny.yaml
output_dir: $3
seed: 11
log_interval: 4
checkpoint:
  keep_last: 2
stages:
  - name: general
    train_data:
      - {name: synthetic, path: "$2/shards/train-*.h5", weight: 1.0}
    eval_data:
      - {name: val, path: "$2/shards/val-*.h5", max_samples: 24}
    seq_len: 64
    steps: 24
    batch_tokens: 768
    micro_batch: 2
    checkpoint_interval: 8
    eval_interval: 12
    optimizer: {lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 4, schedule: cosine}
  - name: code
    train_data:
      - {name: synthetic, path: "$2/shards/train-*.h5"}
    eval_data:
      - {name: val, path: "$2/shards/val-*.h5", max_samples: 12}
    seq_len: 128
    steps: 12
    batch_tokens: 1536
    micro_batch: 2
    checkpoint_interval: 8
    overlap_grad_reduce: false
    optimizer: {lr: 2.0e-3, min_lr: 2.0e-4, warmup_steps: 2, schedule: wsd, decay_steps: 4}
  - name: long
    train_data:
      - {name: synthetic, path: "$2/shards/train-*.h5"}
    seq_len: 256
    rope_theta: 1000000
    steps: 8
    batch_tokens: 3072
    micro_batch: 1
    zero_stage: 2
    grad_bucket_mb: 0.05
    recompute_activations: true
    lm_head_chunk_tokens: 100
    optimizer: {lr: 1.0e-3, min_lr: 1.0e-4, schedule: constant, carry_state: false}
backend: cpu  # last, so that the line numbers the error tests expect stay put
YAML
}

# mpi NP LOG ARGS...: qwen3-train on NP ranks, QWEN3_TEST_TRAIN_TIMEOUT seconds at most (default 300;
# the emulated device's runs take longer); sets status
mpi() {
  local np=$1 log=$2
  shift 2
  timeout "${QWEN3_TEST_TRAIN_TIMEOUT:-300}" "$MPIEXEC" -n "$np" --oversubscribe "$BIN/qwen3-train" "$@" >"$log" 2>&1
  status=$?
}

# The (kind, step, loss, grad_norm) sequence of a metrics file, as text, for exact comparison.
loss_sequence() {
  sed -E 's/.*"grad_norm":([^,]*).*"kind":"([a-z]*)".*"loss":([^,]*).*"step":([0-9]*).*/\2 \4 \3 \1/' \
    "$1"
}

same_files() {  # same_files DIR_A DIR_B FILES...: byte-identical files of two checkpoints
  local a=$1 b=$2
  shift 2
  for f in "$@"; do
    cmp -s "$a/$f" "$b/$f" || return 1
  done
}

# The loss falls in every stage: the mean of its last 3 steps is below the mean of its first 3.
check_loss_falls_per_stage() {  # check_loss_falls_per_stage METRICS LABEL STAGES...
  local metrics=$1 label=$2 stage first last
  shift 2
  for stage in "$@"; do
    read -r first last < <(grep '"kind":"train"' "$metrics" | grep "\"stage\":$stage," |
      sed -E 's/.*"loss":([^,]*).*/\1/' |
      awk '{v[NR]=$1} END {print (v[1]+v[2]+v[3])/3, (v[NR]+v[NR-1]+v[NR-2])/3}')
    awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < a)}' &&
      pass "${label}stage $stage: loss falls from $first to $last" ||
      fail "${label}stage $stage: loss did not fall ($first -> $last)"
  done
}
