// qwen3-bench-tokenizer: single-thread throughput of the tokenizer (dataloader/tokenizer) on
// corpora given as JSON lists of documents. bench/tokenizer_vs_hf.py runs it beside Hugging Face's
// tokenizers on the same documents and prints the ratios; run alone it prints its own figures.
//
//   qwen3-bench-tokenizer (--tokenizer DIR | --vocab V --merges M | --tokenizer-json J)
//                         --corpus NAME=DOCS.json [--corpus ...] [--repeats N]
//
// Every repeat encodes all documents of a corpus with a fresh Encoder (an empty word cache), one
// document at a time, on this thread. Printed per corpus: bytes, tokens, the median time and the
// MB/s and tokens/s it gives; the last line is the same as JSON.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "core/util/file_io.h"
#include "dataloader/tokenizer/tokenizer_files.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Corpus {
  std::string name;
  std::vector<std::string> documents;
  size_t bytes = 0;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    qwen3::TokenizerFiles files;
    std::string directory;
    std::vector<Corpus> corpora;
    int repeats = 5;
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      QWEN3_CHECK(i + 1 < argc, "{} needs a value", flag);
      const std::string value = argv[++i];
      if (flag == "--tokenizer") {
        directory = value;
      } else if (flag == "--vocab") {
        files.vocab_json = value;
      } else if (flag == "--merges") {
        files.merges_txt = value;
      } else if (flag == "--tokenizer-json") {
        files.tokenizer_json = value;
      } else if (flag == "--repeats") {
        repeats = std::max(1, std::stoi(value));
      } else if (flag == "--corpus") {
        const size_t equals = value.find('=');
        QWEN3_CHECK(equals != std::string::npos, "--corpus expects NAME=DOCS.json, got '{}'",
                    value);
        Corpus corpus{value.substr(0, equals), {}, 0};
        const nlohmann::json list =
            nlohmann::json::parse(qwen3::read_file(value.substr(equals + 1)));
        for (const auto& document : list) {
          corpus.documents.push_back(document.get<std::string>());
          corpus.bytes += corpus.documents.back().size();
        }
        corpora.push_back(std::move(corpus));
      } else {
        qwen3::throw_error(
            fmt::format("unknown flag '{}'; flags: --tokenizer --vocab --merges "
                        "--tokenizer-json --corpus --repeats",
                        flag));
      }
    }
    QWEN3_CHECK(!corpora.empty(), "no --corpus NAME=DOCS.json given");
    if (!directory.empty()) files = qwen3::find_tokenizer_files(directory);
    const auto load_start = Clock::now();
    const qwen3::Tokenizer tokenizer = qwen3::load_tokenizer(files);
    const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
    fmt::print("tokenizer: {} ids, {} merges, loaded in {:.2f} s\n", tokenizer.vocab_size(),
               tokenizer.num_merges(), load_seconds);

    nlohmann::json report = {{"load_seconds", load_seconds}, {"corpora", nlohmann::json::object()}};
    std::vector<uint32_t> ids;
    for (const Corpus& corpus : corpora) {
      std::vector<double> seconds;
      size_t tokens = 0;
      for (int r = 0; r < repeats; ++r) {
        qwen3::Encoder encoder(tokenizer);
        tokens = 0;
        const auto start = Clock::now();
        for (const std::string& document : corpus.documents) {
          ids.clear();
          encoder.encode(document, ids);
          tokens += ids.size();
        }
        seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
      std::sort(seconds.begin(), seconds.end());
      const double median = seconds[seconds.size() / 2];
      const double mb_per_s = static_cast<double>(corpus.bytes) / median / 1e6;
      const double tokens_per_s = static_cast<double>(tokens) / median;
      fmt::print(
          "{:<10} {:>6} docs {:>10} bytes {:>9} tokens  {:.3f} s  {:6.2f} MB/s  {:9.0f} "
          "tokens/s (one thread, median of {})\n",
          corpus.name, corpus.documents.size(), corpus.bytes, tokens, median, mb_per_s,
          tokens_per_s, repeats);
      report["corpora"][corpus.name] = {{"documents", corpus.documents.size()},
                                        {"bytes", corpus.bytes},
                                        {"tokens", tokens},
                                        {"seconds", median},
                                        {"mb_per_s", mb_per_s},
                                        {"tokens_per_s", tokens_per_s}};
    }
    std::puts(report.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-bench-tokenizer: error: %s\n", e.what());
    return 1;
  }
}
