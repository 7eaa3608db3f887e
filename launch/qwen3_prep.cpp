// qwen3-prep: turns text (tokenized with Qwen's tokenizer) or already-tokenized documents into the
// HDF5 shards the loader reads, and checks existing shards in full. See docs/data-format.md.
#include <sys/stat.h>
#include <unistd.h>

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
    "usage: qwen3-prep [--input] PATH [[--input] PATH ...] --output DIR --format text|jsonl\n"
    "                  --tokenizer DIR [options]\n"
    "       qwen3-prep [--input] PATH [...] --output DIR --vocab-size N --eos-id ID\n"
    "                  --tokenizer NAME [--format ids|u32|bytes] [options]\n"
    "       qwen3-prep --check 'GLOB' [--vocab-size N]\n"
    "\n"
    "Writes DIR/train-NNNNN.h5, DIR/val-NNNNN.h5 and DIR/manifest.json (docs/data-format.md).\n"
    "A run that is killed resumes when started again with the same arguments.\n"
    "  --input PATH          input file, or a directory: every file below it, in sorted order;\n"
    "                        repeat for several, read in order. Arguments that are not options\n"
    "                        are inputs too, so a shell glob works: qwen3-prep ... data/*.txt\n"
    "  --input-format F      text: each file one document of UTF-8 text (source code, say)\n"
    "                        jsonl: one JSON object per line, its --jsonl-field the text\n"
    "                        ids: one document per line, whitespace-separated token ids (default)\n"
    "                        u32: raw little-endian uint32 ids, a document ends at each --eos-id\n"
    "                        bytes: each file is one document, its bytes the ids 0..255; no\n"
    "                        tokenizer needed; --vocab-size above 255 (257 with --eos-id 256);\n"
    "                        empty files are skipped\n"
    "  --format F            the same as --input-format\n"
    "  --output DIR          new directory for the shards; existing shards are never overwritten\n"
    "  --tokenizer DIR|NAME  text and jsonl: the directory with tokenizer.json, or vocab.json and\n"
    "                        merges.txt (a Hugging Face model directory); recorded in every shard\n"
    "                        unless --tokenizer-name is given. Other formats: the name recorded,\n"
    "                        e.g. Qwen/Qwen3-0.6B\n"
    "  --vocab FILE, --merges FILE, --tokenizer-json FILE\n"
    "                        the tokenizer's files by name, instead of a directory; with all "
    "three\n"
    "                        they must agree. Without tokenizer.json, Qwen3's added tokens are "
    "used\n"
    "  --tokenizer-name NAME the tokenizer's name recorded in every shard, e.g. Qwen/Qwen3-0.6B\n"
    "  --jsonl-field F       the JSONL field holding the text (default text; the-stack: content)\n"
    "  --extensions LIST     read only files ending in these from directories: .rs,.toml\n"
    "  --invalid-utf8 P      text that is not UTF-8: error (default: stop, naming file, line and\n"
    "                        byte), replace (U+FFFD for each bad sequence), skip (leave it out)\n"
    "  --threads N           tokenizing threads (default: one per core); the shards are the same\n"
    "                        for any number\n"
    "  --vocab-size N        the vocabulary size; every id must be below it (text: the\n"
    "                        tokenizer's by default, 151669 for Qwen3)\n"
    "  --eos-id ID           end-of-document token, appended to documents that lack it (text: the\n"
    "                        tokenizer's <|endoftext|> by default)\n"
    "  --shard-tokens N      tokens per shard, about (default 67108864: 256 MiB files)\n"
    "  --val-fraction F      fraction of documents held out for validation (default 0)\n"
    "  --seed S              picks the validation documents (default 0)\n"
    "  --chunk-tokens N      HDF5 chunk size in tokens (default 262144: 1 MiB)\n"
    "  --no-append-eos       keep documents exactly as given\n"
    "  --no-progress         no progress bar (it is drawn only when stderr is a terminal)\n"
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

std::vector<std::string> parse_extensions(const std::string& list) {
  std::vector<std::string> extensions;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    std::string extension = list.substr(begin, end - begin);
    if (!extension.empty()) extensions.push_back(extension[0] == '.' ? extension : "." + extension);
    begin = end + 1;
  }
  if (extensions.empty()) throw UsageError("--extensions expects a list such as .rs,.toml");
  return extensions;
}

// One line on stderr, redrawn in place: how much of the input is done, how fast, how long to go.
class ProgressBar {
 public:
  void draw(const qwen3::PrepProgress& p) {
    if (first_bytes_ < 0) first_bytes_ = p.bytes_done;
    const double fraction =
        p.bytes_total > 0 ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total)
                          : 1.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    const double rate =
        p.seconds > 0 ? static_cast<double>(p.bytes_done - first_bytes_) / p.seconds : 0.0;
    std::string eta = "--:--";
    if (rate > 0) {
      const auto left =
          static_cast<long long>(static_cast<double>(p.bytes_total - p.bytes_done) / rate);
      eta = left >= 3600 ? fmt::format("{}:{:02d}:{:02d}", left / 3600, left / 60 % 60, left % 60)
                         : fmt::format("{}:{:02d}", left / 60, left % 60);
    }
    std::fprintf(stderr,
                 "\r[%s%s] %5.1f%%  %.1f of %.1f MB  %.2f MB/s  %s tokens  %s docs  ETA %s ",
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), 100 * fraction,
                 static_cast<double>(p.bytes_done) / 1e6, static_cast<double>(p.bytes_total) / 1e6,
                 rate / 1e6, qwen3::with_commas(p.tokens).c_str(),
                 qwen3::with_commas(p.documents).c_str(), eta.c_str());
    std::fflush(stderr);
  }
  void end() {
    if (first_bytes_ >= 0) std::fputc('\n', stderr);
  }

 private:
  int64_t first_bytes_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  qwen3::PrepOptions options;
  std::string check_pattern, tokenizer, tokenizer_name;
  bool progress = true;
  try {
    const std::vector<std::string> flags = {
        "--input",          "--input-format", "--format",       "--output",
        "--vocab-size",     "--eos-id",       "--tokenizer",    "--shard-tokens",
        "--val-fraction",   "--seed",         "--chunk-tokens", "--no-append-eos",
        "--check",          "--vocab",        "--merges",       "--tokenizer-json",
        "--tokenizer-name", "--jsonl-field",  "--extensions",   "--invalid-utf8",
        "--threads",        "--no-progress"};
    if (args.empty()) throw UsageError("no arguments");
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& flag = args[i];
      if (flag == "--no-append-eos") {
        options.append_eos = false;
        continue;
      }
      if (flag == "--no-progress") {
        progress = false;
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
        else if (value == "text")
          options.format = qwen3::PrepInputFormat::kText;
        else if (value == "jsonl")
          options.format = qwen3::PrepInputFormat::kJsonl;
        else
          throw UsageError(flag + " is 'text', 'jsonl', 'ids', 'u32' or 'bytes', got '" + value +
                           "'");
      } else if (flag == "--output") {
        options.output_dir = value;
      } else if (flag == "--vocab-size") {
        options.vocab_size = parse_flag_int(flag, value);
      } else if (flag == "--eos-id") {
        options.eos_id = parse_flag_int(flag, value);
      } else if (flag == "--tokenizer") {
        tokenizer = value;
      } else if (flag == "--tokenizer-name") {
        tokenizer_name = value;
      } else if (flag == "--vocab") {
        options.tokenizer_files.vocab_json = value;
      } else if (flag == "--merges") {
        options.tokenizer_files.merges_txt = value;
      } else if (flag == "--tokenizer-json") {
        options.tokenizer_files.tokenizer_json = value;
      } else if (flag == "--jsonl-field") {
        options.jsonl_field = value;
      } else if (flag == "--extensions") {
        options.extensions = parse_extensions(value);
      } else if (flag == "--invalid-utf8") {
        if (value == "error")
          options.invalid_utf8 = qwen3::InvalidUtf8::kError;
        else if (value == "replace")
          options.invalid_utf8 = qwen3::InvalidUtf8::kReplace;
        else if (value == "skip")
          options.invalid_utf8 = qwen3::InvalidUtf8::kSkip;
        else
          throw UsageError("--invalid-utf8 is 'error', 'replace' or 'skip', got '" + value + "'");
      } else if (flag == "--threads") {
        options.threads = static_cast<int>(parse_flag_int(flag, value));
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
    const bool text = qwen3::is_text_format(options.format);
    if (!text && !options.tokenizer_files.empty())
      throw UsageError("--vocab, --merges and --tokenizer-json are for --format text or jsonl");
    if (text && check_pattern.empty() && options.tokenizer_files.empty() && tokenizer.empty())
      throw UsageError(
          "--format text and jsonl need the tokenizer: --tokenizer DIR (with tokenizer.json, or "
          "vocab.json and merges.txt), or --vocab and --merges, or --tokenizer-json");
    options.tokenizer = tokenizer_name.empty() ? tokenizer : tokenizer_name;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "qwen3-prep: %s\n\n%s", e.what(), kUsage);
    return kExitUsage;
  }

  ProgressBar bar;
  try {
    using qwen3::with_commas;
    if (!check_pattern.empty()) {
      const qwen3::CheckSummary s = qwen3::check_shards(check_pattern, options.vocab_size);
      std::printf("ok: %lld shards, %s tokens, %s documents, largest token id %u\n",
                  static_cast<long long>(s.shards), with_commas(s.tokens).c_str(),
                  with_commas(s.documents).c_str(), s.largest_token);
      return 0;
    }
    if (qwen3::is_text_format(options.format) && options.tokenizer_files.empty())
      options.tokenizer_files = qwen3::find_tokenizer_files(tokenizer);
    if (progress && isatty(STDERR_FILENO))
      options.on_progress = [&bar](const qwen3::PrepProgress& p) { bar.draw(p); };
    const qwen3::PrepSummary summary = qwen3::run_prep(options);
    bar.end();
    if (summary.resumed_at_document >= 0)
      std::printf(
          "resumed: kept %lld shards an earlier run completed, read the input again from document "
          "%s (those shards' documents were not tokenized again)\n",
          static_cast<long long>(summary.resumed_shards),
          with_commas(summary.resumed_at_document).c_str());
    for (const qwen3::SplitSummary* split : {&summary.train, &summary.val})
      std::printf("%-5s %zu shards, %s tokens, %s documents\n", split->name.c_str(),
                  split->shards.size(), with_commas(split->tokens).c_str(),
                  with_commas(split->documents).c_str());
    if (summary.empty_documents > 0)
      std::printf("left out %s empty documents\n", with_commas(summary.empty_documents).c_str());
    if (summary.invalid_utf8_documents > 0)
      std::printf("%s %s documents that were not valid UTF-8\n",
                  options.invalid_utf8 == qwen3::InvalidUtf8::kSkip ? "left out" : "repaired",
                  with_commas(summary.invalid_utf8_documents).c_str());
    std::printf("manifest: %s\n", summary.manifest_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    bar.end();
    std::fprintf(stderr, "qwen3-prep: error: %s\n", e.what());
    return kExitError;
  }
}
