// qwen3-dump-tokens: the tokenizer's ids for a list of texts, and what the ids decode to, as JSON,
// for tests/python/test_tokenizer_vs_hf.py to compare with Hugging Face's tokenizers.
//   qwen3-dump-tokens (--tokenizer DIR | --vocab V --merges M [--tokenizer-json J]
//                      | --tokenizer-json J) --texts TEXTS.json
// TEXTS.json is a JSON list of strings. Prints {"vocab_size": N, "fingerprint": F, "results":
// [{"ids": [...], "decoded": "..."}, ...]}. Errors go to stderr with exit code 1.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "core/util/file_io.h"
#include "dataloader/tokenizer/tokenizer_files.h"

int main(int argc, char** argv) {
  qwen3::TokenizerFiles files;
  std::string directory, texts_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--tokenizer") {
      directory = value;
    } else if (flag == "--vocab") {
      files.vocab_json = value;
    } else if (flag == "--merges") {
      files.merges_txt = value;
    } else if (flag == "--tokenizer-json") {
      files.tokenizer_json = value;
    } else if (flag == "--texts") {
      texts_path = value;
    } else {
      std::fprintf(stderr, "qwen3-dump-tokens: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    if (!directory.empty()) files = qwen3::find_tokenizer_files(directory);
    const qwen3::Tokenizer tokenizer = qwen3::load_tokenizer(files);
    const nlohmann::json texts = nlohmann::json::parse(qwen3::read_file(texts_path));
    qwen3::Encoder encoder(tokenizer);
    nlohmann::json results = nlohmann::json::array();
    std::vector<uint32_t> ids;
    for (const auto& text : texts) {
      ids.clear();
      encoder.encode(text.get<std::string>(), ids);
      // Decoded bytes are shown with invalid UTF-8 replaced, so that a bug cannot break the JSON.
      results.push_back({{"ids", ids}, {"decoded", tokenizer.decode(ids)}});
    }
    const nlohmann::json out = {{"vocab_size", tokenizer.vocab_size()},
                                {"fingerprint", tokenizer.fingerprint()},
                                {"results", results}};
    std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-dump-tokens: error: %s\n", e.what());
    return 1;
  }
}
