#!/usr/bin/env bash
# One failed rank brings the whole mpirun job down quickly, with a non-zero status and a message
# naming the rank and host, whether the rank throws (the program's catch calls MPI_Abort) or is
# killed outright (mpirun notices). The other ranks are blocked in a collective waiting for it at
# that moment, so a hang would show as the time limit.
set -uo pipefail
mpiexec=$1 tool=$2 model=$3 dir=$4
rm -rf "$dir" && mkdir -p "$dir"
# Seconds a failure may take to end the job; a healthy run of the same size takes under 2.
limit=30
failures=0
run() {  # run NAME ARGS... -> sets status, elapsed, out
  local name=$1
  shift
  local start=$SECONDS
  out=$(timeout 120 "$mpiexec" -n 3 --oversubscribe "$tool" --model "$model" --out "$dir/$name" \
        --rows 6 --steps 4 "$@" 2>&1)
  status=$?
  elapsed=$((SECONDS - start))
}
expect() {  # expect NAME EXPECTED-STATUS(ok|fail) MESSAGE-REGEX
  local name=$1 want=$2 regex=$3
  if [[ $want == ok && $status -ne 0 ]] || [[ $want == fail && $status -eq 0 ]]; then
    echo "FAIL $name: exit status $status"; echo "$out"; failures=$((failures + 1)); return
  fi
  if [[ $status -eq 124 || $elapsed -gt $limit ]]; then
    echo "FAIL $name: took ${elapsed}s (limit ${limit}s)"; echo "$out"; failures=$((failures + 1)); return
  fi
  if ! grep -Eq -- "$regex" <<<"$out"; then
    echo "FAIL $name: output does not match '$regex'"; echo "$out"; failures=$((failures + 1)); return
  fi
  echo "ok   $name: status $status after ${elapsed}s"
}
host=$(hostname)
run healthy
expect healthy ok "wrote .*: 4 steps on 3 ranks"
run throw --fail-rank 1 --fail-step 2
expect throw fail "error on rank 1 of 3 \(host $host\): injected failure at step 2"
run kill --fail-rank 2 --fail-step 1 --fail-how kill
expect kill fail "rank 2 .*(signal 9|Killed)"
if [[ -e $dir/throw/params_final.f32 || -e $dir/kill/params_final.f32 ]]; then
  echo "FAIL a failed job wrote its final weights"; failures=$((failures + 1))
fi
exit $((failures > 0))
