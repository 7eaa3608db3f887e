// qwen3-dump-batches: prints what the loaders hand the trainer, as JSON, for tests/python to
// compare against batches computed independently from the same shards with h5py.
//   qwen3-dump-batches --eval GLOB --seq-len L --global-batch B [--rank R --world-size W]
//                      [--vocab-size V]
// Errors go to stderr with exit code 1, as in the real programs.
#include <cstdio>
#include <cstring>
#include <string>

#include "dataloader/eval_loader.h"

namespace {

void print_array(const char* name, const std::vector<int32_t>& values, size_t count) {
  std::printf("\"%s\": [", name);
  for (size_t i = 0; i < count; ++i)
    std::printf("%s%d", i ? ", " : "", values[i]);
  std::printf("]");
}

}  // namespace

int main(int argc, char** argv) {
  qwen3::EvalLoaderConfig config;
  config.vocab_size = 1 << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--eval") {
      config.path = value;
    } else if (flag == "--seq-len") {
      config.seq_len = std::stoll(value);
    } else if (flag == "--global-batch") {
      config.global_batch = std::stoll(value);
    } else if (flag == "--rank") {
      config.rank = std::stoi(value);
    } else if (flag == "--world-size") {
      config.world_size = std::stoi(value);
    } else if (flag == "--vocab-size") {
      config.vocab_size = std::stoll(value);
    } else {
      std::fprintf(stderr, "qwen3-dump-batches: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    qwen3::EvalLoader loader(config);
    std::printf("{\"num_samples\": %lld, \"batches\": [\n",
                static_cast<long long>(loader.num_samples()));
    bool first = true;
    while (auto b = loader.next()) {
      const auto n = static_cast<size_t>(b->real_rows * config.seq_len);
      std::printf("%s{\"real_rows\": %lld, ", first ? "" : ",\n",
                  static_cast<long long>(b->real_rows));
      print_array("tokens", b->batch.tokens, n);
      std::printf(", ");
      print_array("targets", b->batch.targets, n);
      std::printf(", ");
      print_array("positions", b->batch.positions, n);
      std::printf(", ");
      print_array("doc_ids", b->batch.doc_ids, n);
      std::printf("}");
      first = false;
    }
    std::printf("\n]}\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-dump-batches: error: %s\n", e.what());
    return 1;
  }
}
