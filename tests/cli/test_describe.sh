#!/usr/bin/env bash
# qwen3-train --describe prints the published totals for Qwen3-0.6B and the seed's 3-layer variant,
# and the memory of each precision (fp32; bf16 with fp32 or bf16 gradients); --run-options lists
# grad_dtype with its default.
set -euo pipefail
exe=$1 configs=$2
out=$("$exe" --describe "$configs/qwen3-0.6b.yaml")
echo "$out"
for expected in "unique parameters .* 596,049,920" "if the head were untied .* 751,632,384" \
                "without the embedding .* 440,467,456" "AdamW state" "total per token" \
                "bf16, fp32 grads" "bf16, bf16 grads" "gradients .* 2.22 GiB .* 2.22 GiB .* 1.11 GiB" \
                "bytes per parameter .* 16 .* 18 .* 16"; do
  grep -Eq "$expected" <<<"$out" || { echo "FAIL: missing '$expected'"; exit 1; }
done
"$exe" --describe "$configs/qwen3-3layer-v1519.yaml" | grep -Eq "if the head were untied .* 50,304,768" \
  || { echo "FAIL: 3-layer variant does not print 50,304,768"; exit 1; }
# Captured first: grep -q stops reading at its match, and the writer's SIGPIPE would fail the pipe.
options=$("$exe" --run-options)
grep -Eq "^  grad_dtype \(string, default 'fp32'\): .*fp32, or bf16" <<<"$options" \
  || { echo "FAIL: --run-options does not list grad_dtype with default fp32"; exit 1; }
echo "describe: ok"
