#!/usr/bin/env bash
# A bad model YAML makes qwen3-train exit non-zero with a message naming the file, key and problem.
set -uo pipefail
exe=$1 dir=$2
mkdir -p "$dir"
good='model_type: qwen3
vocab_size: 1024
hidden_size: 64
intermediate_size: 192
num_hidden_layers: 2
num_attention_heads: 4
num_key_value_heads: 2
head_dim: 16
rms_norm_eps: 1.0e-6
rope_theta: 10000
max_position_embeddings: 256
tie_word_embeddings: true'
failures=0
# check NAME SED-EXPRESSION EXPECTED-MESSAGE-REGEX
check() {
  local name=$1 edit=$2 expected=$3 file="$dir/$1.yaml"
  sed -e "$edit" <<<"$good" >"$file"
  local err status
  err=$("$exe" --describe "$file" 2>&1 >/dev/null)
  status=$?
  if [[ $status -eq 0 ]]; then
    echo "FAIL $name: exit status 0"; failures=$((failures + 1))
  elif ! grep -Eq -- "$expected" <<<"$err"; then
    echo "FAIL $name: message '$err' does not match '$expected'"; failures=$((failures + 1))
  else
    echo "ok   $name: $err"
  fi
}
check unknown_key   's/^hidden_size:/hiden_size:/'           "$dir/unknown_key.yaml:3:1: key 'hiden_size' unknown .*did you mean 'hidden_size'"
check missing_key   '/^num_key_value_heads:/d'               "missing_key.yaml.*'num_key_value_heads' is required"
check wrong_type    's/^head_dim: 16/head_dim: sixteen/'     "wrong_type.yaml:8:1: key 'head_dim' must be an integer, got 'sixteen'"
check bad_gqa       's/^num_key_value_heads: 2/num_key_value_heads: 3/' "bad_gqa.yaml:7:1: key 'num_key_value_heads' 3 does not divide num_attention_heads 4"
check odd_head_dim  's/^head_dim: 16/head_dim: 15/'          "odd_head_dim.yaml:8:1: key 'head_dim' 15 is odd"
check syntax_error  's/^vocab_size: 1024/vocab_size: [1024/' "syntax_error.yaml:[0-9]+:[0-9]+: YAML syntax error"
"$exe" --describe "$dir/does-not-exist.yaml" >/dev/null 2>&1 && { echo "FAIL missing file accepted"; failures=$((failures + 1)); }
exit $failures
