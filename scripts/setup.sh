#!/usr/bin/env bash
# Installs the Debian packages qwen3-train builds with (only those missing), then configures and
# builds into build/ (programs land in build/bin/). With QWEN3_WITH_TEST_TOOLS=1 it also installs
# what the tests use: Debian's CPU PyTorch and numpy for the parity tests, h5py for the shard
# interop test, Slurm for the batch scripts' test.
# The CUDA backend is built when a CUDA toolkit is found (/usr/local/cuda); pass extra CMake
# arguments through QWEN3_CMAKE_ARGS, e.g. QWEN3_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90a".
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-matplotlib: qwen3-plot-metrics draws the loss and LR curves of a run. libpcre2-dev and
# libutf8proc-dev: the tokenizer's pre-tokeniser regex and its Unicode normalisation (NFC).
packages=(cmake make g++ pkg-config libopenmpi-dev openmpi-bin libhdf5-dev libspdlog-dev
          libfmt-dev libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev libgtest-dev libgmock-dev
          libopenblas-openmp-dev libpcre2-dev libutf8proc-dev python3 python3-matplotlib)
if [[ "${QWEN3_WITH_TEST_TOOLS:-0}" == 1 ]]; then
  # slurm-wlm and munge: the Slurm test starts a controller and a node on this machine.
  packages+=(python3-venv python3-pip python3-torch python3-numpy python3-h5py slurm-wlm munge)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# transformers and safetensors are not Debian packages: they go into build/pyenv, a virtual
# environment that also sees Debian's torch, numpy and h5py. transformers 4.51 is the first with
# Qwen3; Debian's torch 1.13 is too old for its modelling code, so tests use it for config.json
# and the tokenizer (transformers brings Hugging Face's tokenizers, the reference the C++
# tokenizer is compared with), and safetensors to read weights.
if [[ "${QWEN3_WITH_TEST_TOOLS:-0}" == 1 && ! -x build/pyenv/bin/python ]]; then
  mkdir -p build
  /usr/bin/python3 -m venv --system-site-packages build/pyenv
  build/pyenv/bin/pip install -q --disable-pip-version-check "transformers==4.51.3" "safetensors==0.5.3"
fi

# shellcheck disable=SC2086
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${QWEN3_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"
