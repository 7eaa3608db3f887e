// qwen3-dump-step: one forward and backward of a seeded model on a seeded batch, written to a
// directory for an independent implementation (tests/python/test_parity_torch.py) to check.
//
//   qwen3-dump-step --model M.yaml --batch B --seq T --seed S --out DIR [--doc-ids] [--threads N]
//
// DIR receives config.json, layout.tsv (name, offset, shape), params.f32, tokens.i32, labels.i32,
// positions.i32, [doc_ids.i32,] logits.f32, grads.f32 and result.json.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../common/dump_files.h"
#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/rng.h"

namespace {

int32_t random_below(uint64_t seed, uint64_t stream, uint64_t index, int64_t bound) {
  return static_cast<int32_t>(qwen3::random_bits(seed, stream, index) % uint64_t(bound));
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, out_dir;
  int64_t batch = 2, seq = 16, threads = 0;
  uint64_t seed = 1;
  bool with_doc_ids = false;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "qwen3-dump-step: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--model"))
      model_path = value();
    else if (!std::strcmp(argv[i], "--out"))
      out_dir = value();
    else if (!std::strcmp(argv[i], "--batch"))
      batch = std::stoll(value());
    else if (!std::strcmp(argv[i], "--seq"))
      seq = std::stoll(value());
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::stoull(value());
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::stoll(value());
    else if (!std::strcmp(argv[i], "--doc-ids"))
      with_doc_ids = true;
    else {
      std::fprintf(stderr, "qwen3-dump-step: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (model_path.empty() || out_dir.empty()) {
    std::fprintf(stderr,
                 "usage: qwen3-dump-step --model M.yaml --out DIR [--batch B] [--seq T] "
                 "[--seed S] [--doc-ids] [--threads N]\n");
    return 2;
  }
  try {
    using namespace qwen3;
    using namespace qwen3::test_data;
    const ModelConfig config = load_model_config(model_path);
    auto backend = make_cpu_backend(static_cast<int>(threads));
    Qwen3Model model(config, *backend);
    model.init_weights(seed);

    Batch b;
    b.batch = batch;
    b.seq = seq;
    const size_t n = static_cast<size_t>(batch * seq);
    b.tokens.resize(n);
    b.labels.resize(n);
    b.positions.resize(n);
    for (size_t i = 0; i < n; ++i) {
      b.tokens[i] = random_below(seed, 1001, i, config.vocab_size);
      // Labels are the tokens, as in pre-training, with every 7th masked to exercise ignore_index.
      b.labels[i] = i % 7 == 3 ? kIgnoreIndex : b.tokens[i];
      b.positions[i] = static_cast<int32_t>(i % size_t(seq));
    }
    if (with_doc_ids) {
      // Three packed documents per row with uneven lengths; positions restart at each start.
      b.doc_ids.resize(n);
      for (int64_t r = 0; r < batch; ++r) {
        int32_t doc = 0, start = 0;
        for (int64_t t = 0; t < seq; ++t) {
          if (t == seq / 3 || t == seq / 2 + 1) ++doc, start = static_cast<int32_t>(t);
          b.doc_ids[r * seq + t] = doc;
          b.positions[r * seq + t] = static_cast<int32_t>(t) - start;
        }
      }
    }

    const std::vector<float> params = model.params_to_host();
    const LossSum loss = model.forward(b);
    const std::vector<float> logits = model.logits_to_host();
    model.zero_grads();
    model.backward(static_cast<float>(1.0 / double(loss.tokens)));
    const std::vector<float> grads = model.grads_to_host();

    mkdir(out_dir.c_str(), 0755);
    const std::string dir = out_dir + "/";
    write_text(dir + "config.json", to_hf_config_json(config));
    write_layout_tsv(dir + "layout.tsv", model.layout());
    write_array(dir + "params.f32", params);
    write_array(dir + "tokens.i32", b.tokens);
    write_array(dir + "labels.i32", b.labels);
    write_array(dir + "positions.i32", b.positions);
    if (with_doc_ids) write_array(dir + "doc_ids.i32", b.doc_ids);
    write_array(dir + "logits.f32", logits);
    write_array(dir + "grads.f32", grads);
    write_text(dir + "result.json",
               fmt::format("{{\"loss\": {:.9g}, \"tokens\": {}, \"batch\": {}, \"seq\": {}, "
                           "\"ignore_index\": {}}}\n",
                           loss.mean(), loss.tokens, batch, seq, kIgnoreIndex));
    std::printf("wrote %s: loss %.6f over %lld tokens\n", out_dir.c_str(), loss.mean(),
                static_cast<long long>(loss.tokens));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-dump-step: error: %s\n", e.what());
    return 1;
  }
}
