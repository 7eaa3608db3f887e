// qwen3-dump-hf-model: a seeded model saved as a Hugging Face model directory, with a seeded batch
// and this project's loss on it, for tests/python/test_hf_checkpoint.py to load with transformers'
// config and the official safetensors reader and check against an independent forward pass.
//
//   qwen3-dump-hf-model --model M.yaml --out DIR [--dtype f32|bf16] [--seed S] [--batch B]
//                       [--seq T] [--perturb-norms] [--threads N] [--backend cpu|cuda]
//   qwen3-dump-hf-model --checkpoint HF_DIR --out DIR [--seed S] [--batch B] [--seq T]
//                       [--backend cpu|cuda]
//
// With --checkpoint the model is read from an existing HF directory (one qwen3-train wrote, or
// one transformers saved) and nothing is saved: DIR receives only the batch and the outputs below,
// computed on --backend (cuda: bf16 storage, as training runs; tests/gpu/hf_on_gpu.py compares them
// with transformers on the GPU).
//
// DIR receives config.json and model.safetensors (save_hf_model), tokens.i32 and labels.i32
// ([B, T] little-endian int32, labels aligned with tokens as HF takes them, -100 ignored),
// token_losses.f32 ([B, T]: position t scored on labels[t + 1], 0 where nothing is scored),
// logits.f32 ([B, T, vocab]) and result.json (mean loss, scored tokens, batch, seq, dtype). With
// bf16 the model is rounded to bf16 before the loss is taken, so the loss is that of the weights in
// the file.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/dump_files.h"
#include "core/model/hf_checkpoint.h"
#include "core/model/qwen3_model.h"
#include "core/model/safetensors.h"
#include "core/ops/cuda_backend.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: qwen3-dump-hf-model (--model M.yaml | --checkpoint HF_DIR) --out DIR "
               "[--dtype f32|bf16] [--seed S] [--batch B] [--seq T] [--perturb-norms] "
               "[--threads N] [--backend cpu|cuda]\n");
  return 2;
}

// A seeded batch, the model's loss, token losses and logits on it, written into out_dir.
void dump_outputs(qwen3::Qwen3Model& model, const qwen3::ModelConfig& config, uint64_t seed,
                  int64_t batch, int64_t seq, const std::string& out_dir, const char* dtype) {
  using namespace qwen3;
  using namespace qwen3::test_data;
  Batch b;
  b.batch = batch;
  b.seq = seq;
  const size_t n = static_cast<size_t>(batch * seq);
  for (size_t i = 0; i < n; ++i) {
    b.tokens.push_back(
        static_cast<int32_t>(random_bits(seed, 2001, i) % uint64_t(config.vocab_size)));
    // Labels are the tokens, as in pre-training, with every 5th ignored.
    b.labels.push_back(i % 5 == 2 ? kIgnoreIndex : b.tokens.back());
  }
  const LossSum loss = model.forward(b);
  const std::vector<float> token_losses = model.token_losses_to_host();  // [B·T]
  const std::vector<float> logits = model.logits_to_host();              // [B·T, vocab]

  const std::string dir = out_dir + "/";
  write_array(dir + "tokens.i32", b.tokens);
  write_array(dir + "labels.i32", b.labels);
  write_array(dir + "token_losses.f32", token_losses);
  write_array(dir + "logits.f32", logits);
  write_text(dir + "result.json",
             fmt::format("{{\"loss\": {:.17g}, \"tokens\": {}, \"batch\": {}, \"seq\": {}, "
                         "\"dtype\": \"{}\", \"ignore_index\": {}}}\n",
                         loss.mean(), loss.tokens, batch, seq, dtype, kIgnoreIndex));
  std::printf("wrote %s (%s): loss %.6f over %lld tokens\n", out_dir.c_str(), dtype, loss.mean(),
              static_cast<long long>(loss.tokens));
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, checkpoint, out_dir, dtype_text = "f32", backend_name = "cpu";
  int64_t batch = 2, seq = 16, threads = 0;
  uint64_t seed = 1;
  bool perturb_norms = false;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "qwen3-dump-hf-model: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--model"))
      model_path = value();
    else if (!std::strcmp(argv[i], "--checkpoint"))
      checkpoint = value();
    else if (!std::strcmp(argv[i], "--backend"))
      backend_name = value();
    else if (!std::strcmp(argv[i], "--out"))
      out_dir = value();
    else if (!std::strcmp(argv[i], "--dtype"))
      dtype_text = value();
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::stoull(value());
    else if (!std::strcmp(argv[i], "--batch"))
      batch = std::stoll(value());
    else if (!std::strcmp(argv[i], "--seq"))
      seq = std::stoll(value());
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::stoll(value());
    else if (!std::strcmp(argv[i], "--perturb-norms"))
      perturb_norms = true;
    else {
      std::fprintf(stderr, "qwen3-dump-hf-model: unknown argument '%s'\n", argv[i]);
      return usage();
    }
  }
  if (model_path.empty() == checkpoint.empty() || out_dir.empty() ||
      (dtype_text != "f32" && dtype_text != "bf16") ||
      (backend_name != "cpu" && backend_name != "cuda"))
    return usage();
  try {
    using namespace qwen3;
    using namespace qwen3::test_data;
    const DType dtype = dtype_text == "f32" ? DType::F32 : DType::BF16;
    const bool from_checkpoint = !checkpoint.empty();
    const ModelConfig config =
        from_checkpoint ? load_hf_config(checkpoint) : load_model_config(model_path);
    auto backend =
        backend_name == "cuda" ? make_cuda_backend() : make_cpu_backend(static_cast<int>(threads));
    Qwen3Model model(config, *backend);
    if (from_checkpoint) {
      load_hf_weights(model, checkpoint);
      std::filesystem::create_directories(out_dir);
      // The precision the forward ran in: the CUDA backend stores bf16.
      dump_outputs(model, config, seed, batch, seq, out_dir,
                   backend_name == "cuda" ? "bfloat16" : "float32");
      return 0;
    }
    model.init_weights(seed);

    std::vector<float> params = model.params_to_host();  // [flat_size]
    // Freshly initialised norms are all 1, so swapping two of them, or dropping one, would not
    // change the loss; distinct values make every tensor count.
    if (perturb_norms)
      for (const ParamEntry& e : model.layout().entries())
        if (e.kind == ParamKind::Norm)
          fill_uniform(params.data() + e.offset, e.numel(), 0.5, 1.5, seed,
                       5000 + static_cast<uint64_t>(e.offset));
    if (dtype == DType::BF16)
      for (float& p : params)
        p = bf16_bits_to_float(float_to_bf16_bits(p));
    model.load_params(params);

    std::filesystem::create_directories(out_dir);
    save_hf_model(model, out_dir, dtype);

    dump_outputs(model, config, seed, batch, seq, out_dir,
                 dtype == DType::F32 ? "float32" : "bfloat16");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-dump-hf-model: error: %s\n", e.what());
    return 1;
  }
}
