#!/usr/bin/env bash
# qwen3-train --describe prints the published totals for Qwen3-0.6B and the seed's 3-layer variant.
set -euo pipefail
exe=$1 configs=$2
out=$("$exe" --describe "$configs/qwen3-0.6b.yaml")
echo "$out"
for expected in "unique parameters .* 596,049,920" "if the head were untied .* 751,632,384" \
                "without the embedding .* 440,467,456" "AdamW state" "total per token" \
                "bf16 \\+ fp32 master"; do
  grep -Eq "$expected" <<<"$out" || { echo "FAIL: missing '$expected'"; exit 1; }
done
"$exe" --describe "$configs/qwen3-3layer-v1519.yaml" | grep -Eq "if the head were untied .* 50,304,768" \
  || { echo "FAIL: 3-layer variant does not print 50,304,768"; exit 1; }
echo "describe: ok"
