#!/usr/bin/env bash
# Installs the Debian packages qwen3-train builds with (only those missing), then configures and
# builds into build/ (programs land in build/bin/). With QWEN3_WITH_TEST_TOOLS=1 it also installs
# what the tests use: Debian's CPU PyTorch and numpy for the parity tests, h5py for the shard
# interop test, Slurm for the batch scripts' test.
# The CUDA backend is built when a CUDA toolkit is found (/usr/local/cuda); pass extra CMake
# arguments through QWEN3_CMAKE_ARGS, e.g. QWEN3_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90a".
#
# Without root (docs/cluster.md, "Building without root"):
#   setup.sh --prefix DIR [--debs DEBDIR] [--build-dir B] [--target T]... [--deps-only]
#       the libraries' Debian packages, fetched into DIR/debs (or taken from DEBDIR), unpacked
#       into DIR with DIR/env.sh to source; then the build, finding everything in DIR
#   setup.sh --download-debs DEBDIR
#       on a machine with Debian's package network: the .deb files --prefix needs, into DEBDIR,
#       to carry to an air-gapped node
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
fail() {
  echo "setup: $*" >&2
  exit 1
}

# What the host itself must have: a compiler unpacked into a folder would not find its own parts.
host_tools=(cmake make g++ python3)
# The libraries, which --prefix unpacks into a folder. libpcre2-dev and libutf8proc-dev: the
# tokenizer's pre-tokeniser regex and its Unicode normalisation (NFC).
libraries=(pkg-config libopenmpi-dev openmpi-bin libhdf5-dev libspdlog-dev libfmt-dev
           libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev libgtest-dev libgmock-dev
           libopenblas-openmp-dev libpcre2-dev libutf8proc-dev)
# python3-matplotlib: qwen3-plot-metrics draws the loss and LR curves of a run.
packages=("${host_tools[@]}" "${libraries[@]}" python3-matplotlib)
if [[ "${QWEN3_WITH_TEST_TOOLS:-0}" == 1 ]]; then
  # slurm-wlm and munge: the Slurm test starts a controller and a node on this machine.
  packages+=(python3-venv python3-pip python3-torch python3-numpy python3-h5py slurm-wlm munge)
fi

prefix="" debs="" download="" build_dir=build deps_only=0 targets=()
while (($#)); do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --debs) debs="${2:?--debs needs a folder of .deb files}"; shift 2 ;;
    --download-debs) download="${2:?--download-debs needs a folder}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs a folder}"; shift 2 ;;
    --target) targets+=(--target "${2:?--target needs a target name}"); shift 2 ;;
    --deps-only) deps_only=1; shift ;;
    -h | --help) usage ;;
    *) echo "setup: unknown option '$1'" >&2; usage ;;
  esac
done
[[ -z "$debs" || -n "$prefix" ]] || fail "--debs DEBDIR goes with --prefix DIR (it is where they are unpacked)"

install_system_packages() {
  local missing=() p sudo=""
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# transformers and safetensors are not Debian packages: they go into BUILD/pyenv, a virtual
# environment that also sees Debian's torch, numpy and h5py. transformers 4.51 is the first with
# Qwen3; Debian's torch 1.13 is too old for its modelling code, so tests use it for config.json
# and the tokenizer (transformers brings Hugging Face's tokenizers, the reference the C++
# tokenizer is compared with), and safetensors to read weights.
make_test_venv() {
  [[ "${QWEN3_WITH_TEST_TOOLS:-0}" == 1 && ! -x "$build_dir/pyenv/bin/python" ]] || return 0
  mkdir -p "$build_dir"
  /usr/bin/python3 -m venv --system-site-packages "$build_dir/pyenv"
  "$build_dir/pyenv/bin/pip" install -q --disable-pip-version-check "transformers==4.51.3" "safetensors==0.5.3"
}

# cudnn-frontend's C++ headers (header-only, 3 MB) for cuDNN's fused attention, into
# BUILD/cudnn-frontend where CMake looks, when there is a CUDA toolkit to build it with: so the
# tests compile that path. --no-deps: the wheel's Python dependencies are not needed for its
# headers. cuDNN itself comes with the toolkit here; where it does not, CMake says so and the
# build leaves the path out (or -DQWEN3_CUDNN_ROOT names a cuDNN wheel's folder).
fetch_cudnn_frontend() {
  [[ "${QWEN3_WITH_TEST_TOOLS:-0}" == 1 && ! -f "$build_dir/cudnn-frontend/include/cudnn_frontend.h" ]] || return 0
  [[ -x /usr/local/cuda/bin/nvcc ]] || command -v nvcc >/dev/null || return 0
  "$build_dir/pyenv/bin/pip" install -q --disable-pip-version-check --no-deps \
    --target "$build_dir/cudnn-frontend" "nvidia-cudnn-frontend==1.32.0" ||
    echo "setup: cudnn-frontend's headers could not be fetched; building without cuDNN's attention"
}

# Without root, apt keeps its own package lists, fetched afresh, in a temporary folder (APT_CONFIG
# adds to /etc/apt's settings, so the machine's sources are used).
use_own_apt_lists() {
  [[ $(id -u) -ne 0 ]] || return 0
  apt_state="$(mktemp -d)"
  trap 'rm -rf "$apt_state"' EXIT
  mkdir -p "$apt_state/lists/partial" "$apt_state/cache/archives/partial"
  printf 'Dir::State::Lists "%s/lists";\nDir::Cache "%s/cache";\nDebug::NoLocking "true";\n' \
    "$apt_state" "$apt_state" >"$apt_state/apt.conf"
  export APT_CONFIG="$apt_state/apt.conf"
  apt-get update -qq || fail "apt-get update failed: no package network here? Fetch the .debs on a machine that has it (--download-debs DEBDIR) and pass --debs DEBDIR"
}

# The .deb files of the libraries and everything they need, leaving out what every machine that
# builds C++ has (the C library, the compilers), into $1.
fetch_debs() {
  local dir="$1" names
  command -v apt-get >/dev/null || fail "no apt-get here to fetch Debian packages: run --download-debs DEBDIR on a Debian 12 machine and pass --debs DEBDIR"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  use_own_apt_lists
  names="$(python3 scripts/deb_prefix.py closure "${libraries[@]}")"
  echo "setup: fetching $(wc -w <<<"$names") packages into $dir"
  # shellcheck disable=SC2086
  (cd "$dir" && apt-get download -qq $names) ||
    fail "apt-get download failed (listed above): no package network here? Fetch them elsewhere with --download-debs DEBDIR and pass --debs DEBDIR"
}

install_into_prefix() {
  local tool missing=()
  for tool in "${host_tools[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || fail "--prefix unpacks libraries, not tools: ${missing[*]} must be on PATH already (a module, or the system's packages)"
  mkdir -p "$prefix"
  prefix="$(cd "$prefix" && pwd)"
  if [[ -z "$debs" ]]; then
    debs="$prefix/debs"
    fetch_debs "$debs"
  fi
  compgen -G "$debs/*.deb" >/dev/null || fail "no .deb files in $debs"
  python3 scripts/deb_prefix.py unpack "$debs" "$prefix"
  # shellcheck disable=SC1091
  source "$prefix/env.sh"
}

configure_and_build() {
  local args=()
  [[ -z "$prefix" ]] || args+=("-DCMAKE_PREFIX_PATH=$prefix/usr")
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${args[@]}" ${QWEN3_CMAKE_ARGS:-}
  cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
}

if [[ -n "$download" ]]; then
  fetch_debs "$download"
  echo "setup: carry $download to the machine and run: scripts/setup.sh --prefix DIR --debs $download"
  exit 0
fi
if [[ -n "$prefix" ]]; then
  install_into_prefix
else
  install_system_packages
  make_test_venv
  fetch_cudnn_frontend
fi
((deps_only)) || configure_and_build
[[ -z "$prefix" ]] || echo "setup: libraries in $prefix; run 'source $prefix/env.sh' before building or running"
