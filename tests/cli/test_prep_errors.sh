#!/usr/bin/env bash
# qwen3-prep on bad input: a non-zero exit (2 for a wrong command line, 1 for bad data) and a
# message naming the file, line or option and the problem; nothing is left half-written.
# (Text input's errors, which need a tokenizer, are in test_prep_text.sh and tests/unit.)
set -uo pipefail
exe=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir"
printf '1 2 3\n4 5 6 7\n' >"$dir/good.txt"
printf '1 2 3\n4 five 6\n' >"$dir/word.txt"
printf '1 2 3\n4 5 6\n7 8 9\n10 11 12\n4 5 1024\n' >"$dir/big.txt"
printf 'abcde' >"$dir/odd.u32"
common=(--vocab-size 1024 --eos-id 1023 --tokenizer t)
failures=0
# check NAME EXPECTED-STATUS EXPECTED-MESSAGE-REGEX ARGS...
check() {
  local name=$1 expected_status=$2 expected=$3
  shift 3
  local err status
  err=$("$exe" "$@" 2>&1 >/dev/null)
  status=$?
  if [[ $status -ne $expected_status ]]; then
    echo "FAIL $name: exit status $status, expected $expected_status: $err"; failures=$((failures + 1))
  elif ! grep -Eq -- "$expected" <<<"$err"; then
    echo "FAIL $name: message '$err' does not match '$expected'"; failures=$((failures + 1))
  else
    echo "ok   $name: $(head -1 <<<"$err")"
  fi
}
check unknown_flag 2 "unknown option '--val-fracton' \(did you mean '--val-fraction'\?\)" \
  --input "$dir/good.txt" --output "$dir/o1" "${common[@]}" --val-fracton 0.1
check not_a_number 2 "--shard-tokens expects an integer, got '1e6'" \
  --input "$dir/good.txt" --output "$dir/o2" "${common[@]}" --shard-tokens 1e6
check bad_format 2 "--input-format is 'text', 'jsonl', 'ids', 'u32' or 'bytes', got 'json'" \
  --input "$dir/good.txt" --output "$dir/o3" "${common[@]}" --input-format json
check text_without_tokenizer 2 "--format text and jsonl need the tokenizer: --tokenizer DIR" \
  --input "$dir/good.txt" --output "$dir/o9" --format text
check vocab_for_ids 2 "--vocab, --merges and --tokenizer-json are for --format text or jsonl" \
  --input "$dir/good.txt" --output "$dir/o10" "${common[@]}" --vocab "$dir/v.json"
check bad_invalid_utf8 2 "--invalid-utf8 is 'error', 'replace' or 'skip', got 'drop'" \
  --input "$dir/good.txt" --output "$dir/o11" --format jsonl --tokenizer "$dir" --invalid-utf8 drop
check no_tokenizer_files 1 "tokenizer directory '$dir/none' holds neither tokenizer.json nor vocab.json with merges.txt" \
  --input "$dir/good.txt" --output "$dir/o12" --format jsonl --tokenizer "$dir/none"
check missing_input 1 "input '$dir/absent.txt' does not exist" \
  --input "$dir/absent.txt" --output "$dir/o4" "${common[@]}"
check word_in_ids 1 "$dir/word.txt:2: 'five' is not a token id" \
  --input "$dir/word.txt" --output "$dir/o5" "${common[@]}"
# Tiny shards, so that several are complete before the bad line: they must not survive it.
check id_too_big 1 "$dir/big.txt:5: token id 1024 is not below --vocab-size 1024" \
  --input "$dir/big.txt" --output "$dir/o6" "${common[@]}" --shard-tokens 4
check odd_u32 1 "input '$dir/odd.u32' has 5 bytes, not a whole number of uint32 tokens" \
  --input "$dir/odd.u32" --input-format u32 --output "$dir/o7" "${common[@]}"
check eos_out_of_range 1 "--eos-id must be in \[0, vocab size 1024\), got 5000" \
  --input "$dir/good.txt" --output "$dir/o8" --vocab-size 1024 --eos-id 5000 --tokenizer t
check check_no_match 1 "pattern '$dir/none-\*.h5' matches no files" --check "$dir/none-*.h5"
# A failed run leaves no shard that looks finished.
if compgen -G "$dir/o5/*.h5*" >/dev/null || compgen -G "$dir/o6/*.h5*" >/dev/null; then
  echo "FAIL a failed run left shard files behind: $(ls "$dir"/o5 "$dir"/o6)"; failures=$((failures + 1))
fi
# A good run, then the same output directory again: refused, the shards untouched.
"$exe" --input "$dir/good.txt" --output "$dir/ok" "${common[@]}" >/dev/null || { echo "FAIL good run"; failures=$((failures + 1)); }
check existing_output 1 "'$dir/ok/manifest.json' already exists" \
  --input "$dir/good.txt" --output "$dir/ok" "${common[@]}"
"$exe" --check "$dir/ok/*.h5" --vocab-size 7 >/dev/null 2>&1 && { echo "FAIL --check accepted token 1023 >= 7"; failures=$((failures + 1)); }
exit $failures
