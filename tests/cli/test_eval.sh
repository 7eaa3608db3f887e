#!/usr/bin/env bash
# qwen3-eval end to end: a seeded tiny model saved as a Hugging Face directory
# (qwen3-dump-hf-model), byte-level shards from qwen3-prep, then
#   single: the JSON last line (totals, sources, position buckets adding up), the table for people,
#           the default window length, and the command-line and data errors with their exit codes;
#   mpi:    the same evaluation on 1 rank and under mpirun -np 2 agreeing to 1e-6 relative, with
#           only rank 0 printing, and a batch that does not split over the ranks refused.
# usage: test_eval.sh single|mpi MPIEXEC QWEN3_EVAL QWEN3_PREP QWEN3_DUMP_HF_MODEL MODEL_YAML PYTHON DIR
set -uo pipefail
mode=$1 mpiexec=$2 eval_exe=$3 prep=$4 dump=$5 model_yaml=$6 python=$7 dir=$8
rm -rf "$dir" && mkdir -p "$dir/text/more"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# Deterministic text documents, a few KB each, in a directory tree (qwen3-prep reads it sorted).
for i in 1 2 3 4 5 6; do
  target="$dir/text/doc$i.txt"
  [[ $i -gt 3 ]] && target="$dir/text/more/doc$i.txt"
  awk -v seed="$i" 'BEGIN { srand(seed); for (l = 0; l < 60; ++l) { line = "";
      for (w = 0; w < 10; ++w) line = line sprintf("w%d ", int(rand() * 50)); print line } }' \
      >"$target"
done
"$dump" --model "$model_yaml" --out "$dir/model" --seed 7 >/dev/null || { echo "FAIL qwen3-dump-hf-model"; exit 1; }
"$prep" --format bytes "$dir/text" --output "$dir/data" --vocab-size 257 --eos-id 256 \
  --tokenizer bytes --val-fraction 0.4 --seed 3 >/dev/null || { echo "FAIL qwen3-prep"; exit 1; }
[[ -e $dir/data/val-00000.h5 ]] || { echo "FAIL the test wants a validation split"; exit 1; }

# json_check FILE PYTHON-EXPRESSIONS...: the last line of FILE parses as JSON (bound to j), and
# each expression is true.
json_check() {
  local file=$1
  shift
  "$python" - "$file" "$@" <<'EOF'
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
try:
    j = json.loads(lines[-1])
except (IndexError, ValueError) as e:
    print(f"last line is not JSON ({e}): {lines[-1:]}")
    sys.exit(1)
bad = [x for x in sys.argv[2:] if not eval(x, {"j": j, "math": math})]
for x in bad:
    print(f"not true: {x}")
sys.exit(1 if bad else 0)
EOF
}

# check NAME EXPECTED-STATUS MESSAGE-REGEX ARGS...: qwen3-eval fails as expected.
check() {
  local name=$1 expected_status=$2 expected=$3
  shift 3
  local err status
  err=$("$eval_exe" --backend cpu "$@" 2>&1 >/dev/null)
  status=$?
  if [[ $status -ne $expected_status ]]; then
    fail "$name: exit status $status, expected $expected_status: $err"
  elif ! grep -Eq -- "$expected" <<<"$err"; then
    fail "$name: message '$err' does not match '$expected'"
  else
    echo "ok   $name: $(head -1 <<<"$err")"
  fi
}

common=(--checkpoint "$dir/model" --data "$dir/data/val-*.h5" --data "train=$dir/data/train-*.h5")

if [[ $mode == single ]]; then
  out=$dir/single.txt
  if ! "$eval_exe" --backend cpu "${common[@]}" --seq-len 64 --bucket-tokens 16 --micro-batch 3 \
      --max-samples 13 >"$out" 2>"$dir/single.err"; then
    fail "evaluation: $(cat "$dir/single.err")"
  fi
  if json_check "$out" \
      'j["seq_len"] == 64' \
      'set(j["sources"]) == {"data", "train"}' \
      'all(s["samples"] == 13 and s["tokens"] == 13 * 64 for s in j["sources"].values())' \
      'j["tokens"] == 2 * 13 * 64 and j["samples"] == 26' \
      'all(len(s["buckets"]) == 4 for s in j["sources"].values())' \
      '[(b["begin"], b["end"]) for b in j["sources"]["data"]["buckets"]] == [(0, 16), (16, 32), (32, 48), (48, 64)]' \
      'all(sum(b["tokens"] for b in s["buckets"]) == s["tokens"] for s in j["sources"].values())' \
      'all(abs(sum(b["loss"] * b["tokens"] for b in s["buckets"]) / s["tokens"] - s["loss"]) < 1e-9 * s["loss"] for s in j["sources"].values())' \
      'abs(sum(s["loss"] * s["tokens"] for s in j["sources"].values()) / j["tokens"] - j["loss"]) < 1e-9 * j["loss"]' \
      'abs(j["perplexity"] - math.exp(j["loss"])) < 1e-9 * j["perplexity"]' \
      '5.0 < j["loss"] < 9.0'; then
    echo "ok   JSON last line: totals, sources, 4 buckets adding up"
  else
    fail "JSON last line: $(tail -1 "$out")"
  fi
  for expected in "loss by position in the window" "^0-16 " "^48-64 " "^all \(by tokens\) +26 "; do
    grep -Eq -- "$expected" "$out" || fail "table lacks '$expected': $(cat "$out")"
  done
  # Defaults: windows of max_position_embeddings (256 for the tiny model, under 4096), and one
  # bucket of 4096 positions covers them, so no breakdown is printed.
  out=$dir/defaults.txt
  "$eval_exe" --backend cpu --checkpoint "$dir/model" --data "$dir/data/val-*.h5" --max-samples 2 >"$out" 2>&1 ||
    fail "evaluation with defaults: $(cat "$out")"
  json_check "$out" 'j["seq_len"] == 256' 'len(j["sources"]["data"]["buckets"]) == 1' \
      'j["sources"]["data"]["buckets"][0]["end"] == 256' && echo "ok   defaults: seq_len 256" ||
    fail "defaults: $(tail -1 "$out")"
  grep -q "loss by position" "$out" && fail "a window of one bucket printed a breakdown"

  # --rope-theta reaches the model: another theta, another loss on the same windows.
  short=(--checkpoint "$dir/model" --data "$dir/data/val-*.h5" --seq-len 64 --max-samples 2)
  "$eval_exe" --backend cpu "${short[@]}" >"$dir/theta_default.txt" 2>&1 &&
    "$eval_exe" --backend cpu "${short[@]}" --rope-theta 10 >"$dir/theta_10.txt" 2>&1 ||
    fail "--rope-theta run: $(cat "$dir/theta_10.txt")"
  loss_default=$(tail -1 "$dir/theta_default.txt" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
  loss_10=$(tail -1 "$dir/theta_10.txt" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
  [[ -n $loss_default && -n $loss_10 && $loss_default != "$loss_10" ]] &&
    echo "ok   --rope-theta changes the loss ($loss_default, $loss_10)" ||
    fail "--rope-theta 10 left the loss at $loss_default ($loss_10)"
  check bad_theta 2 "--rope-theta expects a positive number, got '-1'" "${short[@]}" --rope-theta -1

  check no_match 1 "pattern '$dir/data/none-\*.h5' matches no files" \
    --checkpoint "$dir/model" --data "$dir/data/none-*.h5" --seq-len 64
  check bad_number 2 "--seq-len expects an integer, got '6x4'" \
    --checkpoint "$dir/model" --data "$dir/data/val-*.h5" --seq-len 6x4
  check zero_micro_batch 2 "--micro-batch must be at least 1, got 0" \
    --checkpoint "$dir/model" --data "$dir/data/val-*.h5" --micro-batch 0
  check missing_checkpoint 2 "--checkpoint DIR is required" --data "$dir/data/val-*.h5"
  check missing_data 2 "at least one --data" --checkpoint "$dir/model"
  check unknown_option 2 "unknown option '--seqlen'" "${common[@]}" --seqlen 64
  check bad_backend 2 "--backend must be cuda or cpu, got 'tpu'" "${common[@]}" --backend tpu
  check same_names 2 "two --data sources are named 'data'" \
    --checkpoint "$dir/model" --data "$dir/data/val-*.h5" --data "$dir/data/train-*.h5"
  check not_hf_dir 1 "--checkpoint '$dir/data' is not a Hugging Face model directory" \
    --checkpoint "$dir/data" --data "$dir/data/val-*.h5"
  check too_long 1 "--seq-len 512 exceeds the model's max_position_embeddings 256" \
    "${common[@]}" --seq-len 512
else
  one=$dir/np1.txt two=$dir/np2.txt
  args=("${common[@]}" --seq-len 32 --bucket-tokens 8 --micro-batch 2 --max-samples 11)
  "$eval_exe" --backend cpu "${args[@]}" >"$one" 2>"$dir/np1.err" || fail "1 rank: $(cat "$dir/np1.err")"
  timeout 120 "$mpiexec" -n 2 --oversubscribe "$eval_exe" --backend cpu "${args[@]}" >"$two" 2>"$dir/np2.err" ||
    fail "2 ranks: $(cat "$dir/np2.err")"
  # 2 ranks: global batches of 4 rows against 2 on one rank; 11 windows pad the last batch.
  if "$python" - "$one" "$two" <<'EOF'; then
import json, sys
a, b = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:3])
def close(x, y):
    return abs(x - y) <= 1e-6 * max(abs(x), abs(y))
problems = []
if not close(a["loss"], b["loss"]):
    problems.append(f"loss {a['loss']} on 1 rank, {b['loss']} on 2")
if a["tokens"] != b["tokens"] or a["tokens"] != 2 * 11 * 32:
    problems.append(f"tokens {a['tokens']} / {b['tokens']}")
for name in a["sources"]:
    sa, sb = a["sources"][name], b["sources"][name]
    if sa["samples"] != sb["samples"] or len(sa["buckets"]) != 4 or len(sb["buckets"]) != 4:
        problems.append(f"{name}: samples or bucket counts differ")
    for ba, bb in zip(sa["buckets"], sb["buckets"]):
        if ba["tokens"] != bb["tokens"] or not close(ba["loss"], bb["loss"]):
            problems.append(f"{name}: bucket {ba} against {bb}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
    echo "ok   1 and 2 ranks agree"
  else
    fail "1 and 2 ranks disagree"
  fi
  [[ $(grep -c '^{' "$two") -eq 1 && $(grep -c '^source ' "$two") -eq 1 ]] &&
    echo "ok   only rank 0 prints" || fail "2 ranks printed: $(cat "$two")"
  err=$(timeout 120 "$mpiexec" -n 2 --oversubscribe "$eval_exe" --backend cpu "${common[@]}" --batch 3 2>&1)
  status=$?
  if [[ $status -eq 0 || $status -eq 124 ]] || ! grep -q -- "--batch 3 does not split evenly over 2 ranks" <<<"$err"; then
    fail "--batch 3 on 2 ranks: status $status: $err"
  else
    echo "ok   --batch 3 on 2 ranks refused"
  fi
  err=$(timeout 120 "$mpiexec" -n 2 --oversubscribe "$eval_exe" --backend cpu --checkpoint "$dir/model" \
        --data "$dir/data/none-*.h5" --seq-len 32 2>&1)
  status=$?
  if [[ $status -eq 0 || $status -eq 124 ]] || ! grep -q "matches no files" <<<"$err"; then
    fail "no files on 2 ranks: status $status: $err"
  else
    echo "ok   a glob without files ends the 2-rank job"
  fi
fi
exit $((failures > 0))
