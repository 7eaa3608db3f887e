#!/usr/bin/env bash
# The shipped run files are valid: each of configs/{stage1,stage2,stage3,curriculum,demo}.yaml
# passes qwen3-train's full validation (--dump-config) on 1 and 8 ranks, with their data globs
# pointed at small stand-in shards, and states the recipe it promises (sequence lengths, RoPE
# bases, step counts from the token budgets).
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
cd "$WORK" || exit 1
ln -s "$SRC/configs" configs
# Stand-in shards wherever the run files look for data.
awk 'BEGIN { for (d = 0; d < 40; d++) { line = ""; for (k = 0; k < 50; k++) line = line " " (d * 7 + k) % 300; print line } }' >docs.txt
for dir in data/fineweb-edu data/the-stack-dedup-rust runs/demo/data/text runs/demo/data/code; do
  "$BIN/qwen3-prep" --input docs.txt --output "$dir" --vocab-size 320 --eos-id 300 --tokenizer stand-in \
    --val-fraction 0.2 >/dev/null || { echo "qwen3-prep failed"; exit 1; }
done
export QWEN3_DATA=$WORK/data

check() {  # check FILE NP EXPECTED-REGEX... [-- ARGS]
  local file=$1 np=$2
  shift 2
  local regexes=() args=()
  while (($#)); do
    [[ $1 == -- ]] && { shift; args=("$@"); break; }
    regexes+=("$1")
    shift
  done
  timeout 120 "$MPIEXEC" -n "$np" --oversubscribe "$BIN/qwen3-train" "$file" --dump-config "${args[@]}" \
    >"$WORK/dump.txt" 2>&1
  local status=$?
  if [[ $status -ne 0 ]]; then
    fail "$file on $np ranks: status $status"; cat "$WORK/dump.txt"; return
  fi
  for r in "${regexes[@]}"; do
    grep -Eq -- "$r" "$WORK/dump.txt" || { fail "$file: dump lacks '$r'"; cat "$WORK/dump.txt"; return; }
  done
  pass "$file valid on $np ranks"
}
no_init=(--set "init_from=''")
for np in 1 8; do
  check configs/stage1.yaml $np "seq_len: 4096" "rope_theta: 10000" "steps: 95367" "decay_steps: 9537"
  check configs/stage2.yaml $np "steps: 19073" "carry_state: true" -- "${no_init[@]}"
  check configs/stage3.yaml $np "seq_len: 32768" "rope_theta: 1000000" "steps: 4768" "zero_stage: 2" "recompute_activations: true" -- "${no_init[@]}"
  check configs/curriculum.yaml $np "steps: 95367" "steps: 19073" "seq_len: 32768"
done
check configs/demo.yaml 2 "seq_len: 1024" "rope_theta: 1000000"
# stage2.yaml names stage 1's final checkpoint; before stage 1 has run, that is the error.
timeout 60 "$BIN/qwen3-train" configs/stage2.yaml --dump-config >"$WORK/stage2.txt" 2>&1
grep -q "key 'init_from' 'runs/qwen3-0.6b-stage1/checkpoints/latest' is not a model directory" "$WORK/stage2.txt" &&
  pass "stage2.yaml before stage 1 ran: init_from named" || { fail "stage2.yaml without stage 1"; cat "$WORK/stage2.txt"; }
unset QWEN3_DATA
timeout 60 "$BIN/qwen3-train" configs/stage1.yaml --dump-config >"$WORK/nodata.txt" 2>&1
grep -q "key 'stages.0.train_data.0.path' '\${QWEN3_DATA}/fineweb-edu/train-\*.h5' uses the environment variable QWEN3_DATA, which is not set" "$WORK/nodata.txt" &&
  pass "an unset QWEN3_DATA is named" || { fail "unset QWEN3_DATA"; cat "$WORK/nodata.txt"; }
finish
