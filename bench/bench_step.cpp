// qwen3-bench-step: times one forward + backward step on a backend (cpu, or cuda: the step ends
// with a device synchronisation, inside the timing). Driven by bench/step_vs_pytorch.py, which
// runs PyTorch on the same model side by side.
//
//   qwen3-bench-step --model M.yaml --batch B --seq T --threads N --iters K --warmup W
//                    [--backend cpu|cuda]
//
// The last line of output is JSON: {"median_s": ..., "min_s": ..., "tokens": ...}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/model/qwen3_model.h"
#include "core/ops/cuda_backend.h"
#include "core/util/rng.h"

int main(int argc, char** argv) {
  std::string model_path, backend_name = "cpu";
  int64_t batch = 4, seq = 512, threads = 0, iters = 5, warmup = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--model")
      model_path = value;
    else if (key == "--batch")
      batch = std::stoll(value);
    else if (key == "--seq")
      seq = std::stoll(value);
    else if (key == "--threads")
      threads = std::stoll(value);
    else if (key == "--iters")
      iters = std::stoll(value);
    else if (key == "--warmup")
      warmup = std::stoll(value);
    else if (key == "--backend")
      backend_name = value;
    else {
      std::fprintf(stderr, "qwen3-bench-step: unknown argument '%s'\n", key.c_str());
      return 2;
    }
  }
  if (model_path.empty() || iters < 1) {
    std::fprintf(stderr,
                 "usage: qwen3-bench-step --model M.yaml [--batch B] [--seq T] "
                 "[--threads N] [--iters K] [--warmup W] [--backend cpu|cuda]\n");
    return 2;
  }
  try {
    using namespace qwen3;
    const ModelConfig config = load_model_config(model_path);
    auto backend =
        backend_name == "cuda" ? make_cuda_backend() : make_cpu_backend(static_cast<int>(threads));
    Qwen3Model model(config, *backend);
    model.init_weights(1234);
    Batch b;
    b.batch = batch;
    b.seq = seq;
    const size_t n = static_cast<size_t>(batch * seq);
    for (size_t i = 0; i < n; ++i)
      b.tokens.push_back(static_cast<int32_t>(random_bits(7, 0, i) % uint64_t(config.vocab_size)));
    b.labels = b.tokens;

    std::vector<double> seconds;
    for (int64_t it = 0; it < warmup + iters; ++it) {
      const auto start = std::chrono::steady_clock::now();
      model.zero_grads();
      const LossSum loss = model.forward(b);
      model.backward(static_cast<float>(1.0 / double(loss.tokens)));
      backend->synchronize();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %lld: %.3f s, loss %.4f%s\n", static_cast<long long>(it), s, loss.mean(),
                  it < warmup ? " (warmup)" : "");
      if (it >= warmup) seconds.push_back(s);
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("{\"median_s\": %.6f, \"min_s\": %.6f, \"tokens\": %zu}\n",
                seconds[seconds.size() / 2], seconds.front(), n);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-bench-step: error: %s\n", e.what());
    return 1;
  }
}
