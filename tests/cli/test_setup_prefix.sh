#!/usr/bin/env bash
# scripts/setup.sh without root, as on a cluster node: as user nobody, the .debs are fetched with
# --download-debs (apt with its own package lists), then unpacked with --prefix --debs while
# apt-get is unreachable (the air-gapped case), and qwen3-train and qwen3-prep are built from the
# prefix alone. The build must take yaml-cpp, HDF5, MPI, spdlog and OpenBLAS from the prefix,
# its programs must load their libraries from there, and a 2-rank run under the prefix's mpirun
# must log the same losses as the same run of the main build.
#   test_setup_prefix.sh MAIN_BIN MAIN_MPIEXEC SRC WORK
# Exit 77 (skipped) where Debian's package network or a non-root user is out of reach.
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
# shellcheck source=tests/cli/train_test_lib.sh
source "$SRC/tests/cli/train_test_lib.sh"

rm -rf "$WORK" && mkdir -p "$WORK" && chmod 777 "$WORK"
command -v apt-get >/dev/null || { echo "SKIP: no apt-get here"; exit 77; }
if ! (cd "$WORK" && timeout 60 apt-get download -qq zlib1g >/dev/null 2>&1); then
  echo "SKIP: Debian's package network is out of reach (apt-get download zlib1g failed)"
  exit 77
fi
rm -f "$WORK"/*.deb

# The steps run as nobody when this test runs as root, else as the user running it.
as_user=()
if [[ $(id -u) -eq 0 ]]; then
  command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 ||
    { echo "SKIP: running as root without setpriv or user nobody to drop to"; exit 77; }
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$WORK")
fi
# A copy of the sources the user can read (a checkout under /root is not readable by nobody).
mkdir -p "$WORK/src"
tar -C "$SRC" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$WORK/src" -xf -
chmod -R a+rX "$WORK/src"

"${as_user[@]}" bash "$WORK/src/scripts/setup.sh" --download-debs "$WORK/debs" >"$WORK/download.log" 2>&1 ||
  { cat "$WORK/download.log"; fail "setup.sh --download-debs"; finish; }
count=$(find "$WORK/debs" -name '*.deb' | wc -l)
((count >= 20)) && pass "--download-debs fetched $count packages as $("${as_user[@]}" id -un)" ||
  fail "--download-debs fetched only $count packages"

# No package network for the prefix build: an apt-get that fails first on PATH.
mkdir -p "$WORK/offline"
printf '#!/bin/sh\necho "apt-get called offline: $*" >&2\nexit 100\n' >"$WORK/offline/apt-get"
chmod 755 "$WORK/offline/apt-get"
"${as_user[@]}" env PATH="$WORK/offline:$PATH" QWEN3_CMAKE_ARGS="-DQWEN3_ENABLE_CUDA=OFF" \
  bash "$WORK/src/scripts/setup.sh" --prefix "$WORK/prefix" --debs "$WORK/debs" \
  --build-dir "$WORK/build" --target qwen3-train --target qwen3-prep >"$WORK/prefix.log" 2>&1
status=$?
if ((status)); then
  tail -30 "$WORK/prefix.log"
  fail "setup.sh --prefix --debs exited $status"
  finish
fi
pass "setup.sh --prefix --debs built qwen3-train and qwen3-prep without apt-get or root"
grep -q "apt-get called offline" "$WORK/prefix.log" && fail "--prefix --debs called apt-get"
[[ -f "$WORK/prefix/usr/include/yaml-cpp/yaml.h" && -f "$WORK/prefix/env.sh" ]] &&
  pass "the prefix has the headers and env.sh" || fail "no yaml-cpp headers or env.sh in the prefix"

cache="$WORK/build/CMakeCache.txt"
for entry in yaml-cpp_DIR spdlog_DIR HDF5_C_LIBRARY_hdf5 MPI_CXX_HEADER_DIR QWEN3_BLAS_LIBRARY; do
  value=$(sed -n "s/^$entry:[A-Z]*=//p" "$cache")
  [[ "$value" == "$WORK/prefix/"* ]] && pass "CMake found $entry in the prefix" ||
    fail "CMake's $entry is '$value', not in $WORK/prefix"
done

# shellcheck disable=SC1091
source "$WORK/prefix/env.sh"
for lib in libyaml-cpp libhdf5_serial libmpi.so libfmt libopenblas; do
  resolved=$(ldd "$WORK/build/bin/qwen3-train" | awk -v lib="$lib" 'index($1, lib) == 1 {print $3}')
  [[ "$resolved" == "$WORK/prefix/"* ]] && pass "qwen3-train loads $lib from the prefix" ||
    fail "qwen3-train loads $lib from '$resolved'"
done
[[ "$(command -v mpirun)" == "$WORK/prefix/"* ]] && pass "env.sh puts the prefix's mpirun first" ||
  fail "mpirun is $(command -v mpirun)"

# The same 2-rank curriculum, built in the prefix and in the main build: the same losses.
(BIN="$WORK/build/bin" && make_data "$WORK/data" 7 400)
write_run "$WORK/prefix_run.yaml" "$WORK/data" "$WORK/prefix_out"
write_run "$WORK/main_run.yaml" "$WORK/data" "$WORK/main_out"
chmod -R a+rwX "$WORK"
"${as_user[@]}" env PATH="$PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" OPAL_PREFIX="$OPAL_PREFIX" \
  PMIX_PREFIX="$PMIX_PREFIX" timeout 300 mpirun -n 2 --oversubscribe \
  "$WORK/build/bin/qwen3-train" "$WORK/prefix_run.yaml" >"$WORK/prefix_run.log" 2>&1
status=$?
((status == 0)) && pass "2 ranks under the prefix's mpirun trained the curriculum" ||
  { tail -20 "$WORK/prefix_run.log"; fail "the prefix's run exited $status"; }
(
  unset OPAL_PREFIX PMIX_PREFIX LD_LIBRARY_PATH
  timeout 300 "$MPIEXEC" -n 2 --oversubscribe "$BIN/qwen3-train" "$WORK/main_run.yaml" \
    >"$WORK/main_run.log" 2>&1
) || fail "the main build's run failed (see $WORK/main_run.log)"
prefix_losses=$(loss_sequence "$WORK/prefix_out/metrics.jsonl")
main_losses=$(loss_sequence "$WORK/main_out/metrics.jsonl")
if [[ -n "$prefix_losses" && "$prefix_losses" == "$main_losses" ]]; then
  pass "the prefix build's $(wc -l <<<"$prefix_losses") logged losses equal the main build's"
else
  fail "losses differ: prefix build vs main build"
  diff <(echo "$prefix_losses") <(echo "$main_losses") | head -10
fi
finish
