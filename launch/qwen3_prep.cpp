// qwen3-prep: turns already-tokenized documents into the HDF5 shards the loader reads, and checks
// existing shards in full. See docs/data-format.md.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "core/util/format.h"
#include "core/util/options.h"
#include "dataloader/prep.h"

namespace {

constexpr int kExitError = 1;  // bad input or a failure: the message says which
constexpr int kExitUsage = 2;  // the command line itself is wrong

const char* const kUsage =
    "usage: qwen3-prep [--input] PATH [[--input] PATH ...] --output DIR --vocab-size N\n"
    "                  --eos-id ID --tokenizer NAME [options]\n"
    "       qwen3-prep --check 'GLOB' [--vocab-size N]\n"
    "\n"
    "Writes DIR/train-NNNNN.h5, DIR/val-NNNNN.h5 and DIR/manifest.json (docs/data-format.md).\n"
    "  --input PATH          input file, or a directory: every file below it, in sorted order;\n"
    "                        repeat for several, read in order. Arguments that are not options\n"
    "                        are inputs too, so a shell glob works: qwen3-prep ... data/*.txt\n"
    "  --input-format F      ids: one document per line, whitespace-separated token ids (default)\n"
    "                        u32: raw little-endian uint32 ids, a document ends at each --eos-id\n"
    "                        bytes: each file is one document, its bytes the ids 0..255; no\n"
    "                        tokenizer needed; --vocab-size above 255 (257 with --eos-id 256);\n"
    "                        empty files are skipped\n"
    "  --format F            the same as --input-format\n"
    "  --output DIR          new directory for the shards; existing shards are never overwritten\n"
    "  --vocab-size N        the tokenizer's vocabulary size; every id must be below it\n"
    "  --eos-id ID           end-of-document token, appended to documents that lack it\n"
    "  --tokenizer NAME      recorded in every shard, e.g. Qwen/Qwen3-0.6B\n"
    "  --shard-tokens N      tokens per shard, about (default 67108864: 256 MiB files)\n"
    "  --val-fraction F      fraction of documents held out for validation (default 0)\n"
    "  --seed S              picks the validation documents (default 0)\n"
    "  --chunk-tokens N      HDF5 chunk size in tokens (default 262144: 1 MiB)\n"
    "  --no-append-eos       keep documents exactly as given\n"
    "  --check 'GLOB'        open every shard matching GLOB and read every token: structure,\n"
    "                        offsets and token ids below --vocab-size (or the shard's own)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int64_t parse_flag_int(const std::string& flag, const std::string& text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size())
    throw UsageError(flag + " expects an integer, got '" + text + "'");
  return value;
}

double parse_flag_double(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " expects a number, got '" + text + "'");
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  qwen3::PrepOptions options;
  std::string check_pattern;
  try {
    const std::vector<std::string> flags = {
        "--input",        "--input-format",  "--format",       "--output",       "--vocab-size",
        "--eos-id",       "--tokenizer",     "--shard-tokens", "--val-fraction", "--seed",
        "--chunk-tokens", "--no-append-eos", "--check"};
    if (args.empty()) throw UsageError("no arguments");
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& flag = args[i];
      if (flag == "--no-append-eos") {
        options.append_eos = false;
        continue;
      }
      if (flag.empty() || flag[0] != '-') {
        options.inputs.push_back(flag);
        continue;
      }
      bool known = false;
      for (const std::string& f : flags)
        known = known || f == flag;
      if (!known) {
        const std::string hint = qwen3::closest_key(flag, flags);
        throw UsageError("unknown option '" + flag + "'" +
                         (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
      if (i + 1 == args.size()) throw UsageError(flag + " needs a value");
      const std::string& value = args[++i];
      if (flag == "--input") {
        options.inputs.push_back(value);
      } else if (flag == "--input-format" || flag == "--format") {
        if (value == "ids")
          options.format = qwen3::PrepInputFormat::kIdsText;
        else if (value == "u32")
          options.format = qwen3::PrepInputFormat::kRawU32;
        else if (value == "bytes")
          options.format = qwen3::PrepInputFormat::kBytes;
        else
          throw UsageError(flag + " is 'ids', 'u32' or 'bytes', got '" + value + "'");
      } else if (flag == "--output") {
        options.output_dir = value;
      } else if (flag == "--vocab-size") {
        options.vocab_size = parse_flag_int(flag, value);
      } else if (flag == "--eos-id") {
        options.eos_id = parse_flag_int(flag, value);
      } else if (flag == "--tokenizer") {
        options.tokenizer = value;
      } else if (flag == "--shard-tokens") {
        options.shard_tokens = parse_flag_int(flag, value);
      } else if (flag == "--val-fraction") {
        options.val_fraction = parse_flag_double(flag, value);
      } else if (flag == "--seed") {
        options.seed = static_cast<uint64_t>(parse_flag_int(flag, value));
      } else if (flag == "--chunk-tokens") {
        options.chunk_tokens = parse_flag_int(flag, value);
      } else if (flag == "--check") {
        check_pattern = value;
      }
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "qwen3-prep: %s\n\n%s", e.what(), kUsage);
    return kExitUsage;
  }

  try {
    using qwen3::with_commas;
    if (!check_pattern.empty()) {
      const qwen3::CheckSummary s = qwen3::check_shards(check_pattern, options.vocab_size);
      std::printf("ok: %lld shards, %s tokens, %s documents, largest token id %u\n",
                  static_cast<long long>(s.shards), with_commas(s.tokens).c_str(),
                  with_commas(s.documents).c_str(), s.largest_token);
      return 0;
    }
    const qwen3::PrepSummary summary = qwen3::run_prep(options);
    for (const qwen3::SplitSummary* split : {&summary.train, &summary.val})
      std::printf("%-5s %zu shards, %s tokens, %s documents\n", split->name.c_str(),
                  split->shards.size(), with_commas(split->tokens).c_str(),
                  with_commas(split->documents).c_str());
    std::printf("manifest: %s\n", summary.manifest_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-prep: error: %s\n", e.what());
    return kExitError;
  }
}
