#!/usr/bin/env bash
# scripts/gpu-check.sh where there is no GPU: --plan lists the steps and their limits and runs
# nothing; without a GPU the script says why and exits 0; a malformed request is refused. Then,
# with a stand-in nvidia-smi that reports an H200, the steps run against this CPU-only build and
# fail as they must (the CUDA tests skip, the CUDA backend cannot start), each recorded with its
# time in report.md and report.json while the run goes on past the failure; a spent time budget
# leaves the remaining steps "not run".
#   test_gpu_check.sh BUILD_DIR SRC WORK PYTHON
BUILD=$1 SRC=$2 WORK=$3 PYTHON=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK/fake-bin"
check=$SRC/scripts/gpu-check.sh

plan=$("$check" --plan 2>&1) && pass "--plan exits 0" || fail "--plan: status $?"
for step in environment build cuda_tests nccl kernels train_vs_pytorch hugging_face; do
  grep -Eq "^  $step +[0-9]+ s " <<<"$plan" && pass "--plan lists $step with its limit" ||
    fail "--plan lacks $step: $plan"
done
quick=$("$check" --plan --quick)
grep -Eq "kernels|hugging_face" <<<"$quick" && fail "--quick plans kernels or hugging_face" ||
  pass "--quick plans neither the kernel table nor the Hugging Face step"
grep -q "240 s budget" <<<"$quick" && pass "--quick: a 240 s budget" || fail "--quick budget: $quick"
[[ ! -e $WORK/plan-out ]] || fail "--plan wrote something"

# No GPU: PATH without nvidia-smi (a real one, on a GPU machine, is hidden by CUDA_VISIBLE_DEVICES).
out=$(CUDA_VISIBLE_DEVICES="" "$check" --out "$WORK/none" 2>&1)
status=$?
[[ $status -eq 0 ]] && grep -q "no GPU: CUDA_VISIBLE_DEVICES hides every device" <<<"$out" &&
  [[ ! -e $WORK/none ]] && pass "no GPU: says why, writes nothing, exit 0" ||
  fail "no GPU: status $status, output: $out"
if ! command -v nvidia-smi >/dev/null; then
  out=$("$check" 2>&1) && grep -q "no GPU: nvidia-smi is not on PATH" <<<"$out" &&
    pass "no nvidia-smi: 'no GPU' and why" || fail "no nvidia-smi: $out"
fi

out=$("$check" --steps build,fast 2>&1)
[[ $? -ne 0 ]] && grep -q "unknown step(s) fast" <<<"$out" && pass "an unknown step is refused by name" ||
  fail "unknown step: $out"
out=$("$check" --debs /tmp 2>&1)
[[ $? -ne 0 ]] && grep -q "\-\-debs needs --deps" <<<"$out" && pass "--debs without --deps is refused" ||
  fail "--debs alone: $out"

if command -v nvidia-smi >/dev/null; then
  echo "a real nvidia-smi is on PATH: the stand-in GPU part is for machines without one"
  finish
fi
if [[ ! -x $BUILD/bin/qwen3_cuda_tests ]]; then
  echo "this build has no CUDA backend: the stand-in GPU part needs its qwen3_cuda_tests"
  finish
fi
printf '#!/bin/sh\necho "0, NVIDIA H200, 570.86.15, 9.0, 143771"\n' >"$WORK/fake-bin/nvidia-smi"
chmod +x "$WORK/fake-bin/nvidia-smi"
PATH=$WORK/fake-bin:$PATH "$check" --out "$WORK/fake" --build-dir "$BUILD" --python "$PYTHON" \
  --steps cuda_tests,nccl >"$WORK/fake.txt" 2>&1
status=$?
[[ $status -eq 1 ]] && pass "stand-in GPU: failing steps give exit 1" || fail "stand-in GPU: status $status"
"$PYTHON" - "$WORK/fake/report.json" <<'PY' && pass "report.json: both steps ran and failed, with times and reasons" || fail "report.json: $(cat "$WORK/fake.txt")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["pass"] is False, r["pass"]
assert r["environment"]["gpus"][0]["name"] == "NVIDIA H200", r["environment"]
steps = {s["step"]: s for s in r["steps"]}
assert list(steps) == ["cuda_tests", "nccl"], list(steps)
assert not steps["cuda_tests"]["pass"] and "skipped" in steps["cuda_tests"]["summary"], steps
assert steps["cuda_tests"]["figures"]["tests"] > 0, steps["cuda_tests"]
assert not steps["nccl"]["pass"] and "cannot start" in steps["nccl"]["summary"], steps["nccl"]
assert all(s["seconds"] >= 0 and s["limit_s"] > 0 for s in r["steps"])
PY
grep -q "^| cuda_tests | FAIL |" "$WORK/fake/report.md" && grep -q "^| nccl | FAIL |" "$WORK/fake/report.md" &&
  grep -q "NVIDIA H200" "$WORK/fake/report.md" && pass "report.md: the machine and a row per step" ||
  fail "report.md: $(cat "$WORK/fake/report.md")"
grep -q "# gpu-check: FAIL" "$WORK/fake.txt" && pass "the report is printed" || fail "report not printed"

PATH=$WORK/fake-bin:$PATH "$check" --out "$WORK/spent" --build-dir "$BUILD" --python "$PYTHON" \
  --steps cuda_tests,nccl --budget 1 >"$WORK/spent.txt" 2>&1
[[ $(grep -c "not run: the time budget is spent" "$WORK/spent/report.md") -eq 2 ]] &&
  pass "a spent budget: the steps are recorded as not run" || fail "budget: $(cat "$WORK/spent.txt")"
finish
