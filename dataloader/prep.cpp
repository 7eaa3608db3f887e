#include "dataloader/prep.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/util/error.h"
#include "core/util/rng.h"
#include "dataloader/shard_reader.h"
#include "dataloader/shard_writer.h"
#include "dataloader/source.h"

namespace qwen3 {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "raw uint32 input is read as little-endian by a plain copy");

namespace {

// Stream of the counter-based RNG that picks validation documents.
constexpr uint64_t kValidationStream = 0x76616c;  // "val"

class IdsTextReader : public DocumentReader {
 public:
  IdsTextReader(std::string path, int64_t vocab_size) : path_(std::move(path)), vocab_(vocab_size) {
    in_.open(path_);
    QWEN3_CHECK(in_.is_open(), "cannot open input '{}': {}", path_, std::strerror(errno));
  }
  bool next(std::vector<uint32_t>& document) override {
    document.clear();
    while (document.empty()) {
      if (!std::getline(in_, line_)) {
        QWEN3_CHECK(!in_.bad(), "reading input '{}' failed at line {}", path_, line_number_);
        return false;
      }
      ++line_number_;
      const char* p = line_.data();
      const char* end = p + line_.size();
      for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
          ++p;
        if (p == end) break;
        uint64_t id = 0;
        const auto [stop, error] = std::from_chars(p, end, id);
        const char* word_end = p;
        while (word_end < end && *word_end != ' ' && *word_end != '\t' && *word_end != '\r')
          ++word_end;
        if (error != std::errc() || stop != word_end)
          throw_error(
              fmt::format("{}:{}: '{}' is not a token id (expected whitespace-separated "
                          "non-negative integers, one document per line)",
                          path_, line_number_, std::string(p, word_end)));
        if (id >= static_cast<uint64_t>(vocab_))
          throw_error(fmt::format("{}:{}: token id {} is not below --vocab-size {}", path_,
                                  line_number_, id, vocab_));
        document.push_back(static_cast<uint32_t>(id));
        p = word_end;
      }
    }
    return true;
  }

 private:
  std::string path_;
  int64_t vocab_;
  std::ifstream in_;
  std::string line_;
  int64_t line_number_ = 0;
};

class RawU32Reader : public DocumentReader {
 public:
  RawU32Reader(std::string path, int64_t vocab_size, int64_t eos_id)
      : path_(std::move(path)), vocab_(vocab_size), eos_(static_cast<uint32_t>(eos_id)) {
    file_ = std::fopen(path_.c_str(), "rb");
    QWEN3_CHECK(file_ != nullptr, "cannot open input '{}': {}", path_, std::strerror(errno));
    struct stat status {};
    fstat(fileno(file_), &status);
    if (status.st_size % 4 != 0) {
      std::fclose(file_);
      throw_error(
          fmt::format("input '{}' has {} bytes, not a whole number of uint32 tokens; is "
                      "it really raw uint32?",
                      path_, status.st_size));
    }
  }
  ~RawU32Reader() override { std::fclose(file_); }

  bool next(std::vector<uint32_t>& document) override {
    document.clear();
    for (;;) {
      if (cursor_ == block_.size() && !refill()) return !document.empty();
      const uint32_t token = block_[cursor_++];
      if (token >= static_cast<uint64_t>(vocab_))
        throw_error(fmt::format("input '{}': token id {} at token {} is not below --vocab-size {}",
                                path_, token, position_ + cursor_ - 1, vocab_));
      document.push_back(token);
      if (token == eos_) return true;
    }
  }

 private:
  bool refill() {
    position_ += block_.size();
    block_.resize(kBlockTokens);
    const size_t got = std::fread(block_.data(), 4, kBlockTokens, file_);
    QWEN3_CHECK(!std::ferror(file_), "reading input '{}' failed: {}", path_, std::strerror(errno));
    block_.resize(got);
    cursor_ = 0;
    return got > 0;
  }

  static constexpr size_t kBlockTokens = size_t{1} << 20;  // 4 MiB reads
  std::string path_;
  int64_t vocab_;
  uint32_t eos_;
  std::FILE* file_ = nullptr;
  std::vector<uint32_t> block_;
  size_t cursor_ = 0;
  int64_t position_ = 0;  // tokens before block_
};

// A whole file is one document, each byte one token. A file is read at once: byte-level documents
// for the CPU demo are small, and the writer needs the whole document anyway.
class BytesReader : public DocumentReader {
 public:
  explicit BytesReader(std::string path) : path_(std::move(path)) {
    in_.open(path_, std::ios::binary);
    QWEN3_CHECK(in_.is_open(), "cannot open input '{}': {}", path_, std::strerror(errno));
  }
  bool next(std::vector<uint32_t>& document) override {
    document.clear();
    if (done_) return false;
    done_ = true;
    std::vector<char> bytes((std::istreambuf_iterator<char>(in_)),
                            std::istreambuf_iterator<char>());
    QWEN3_CHECK(!in_.bad(), "reading input '{}' failed: {}", path_, std::strerror(errno));
    document.reserve(bytes.size());
    for (const char c : bytes)
      document.push_back(static_cast<unsigned char>(c));
    // An empty file holds no document; the format has no empty documents.
    return !document.empty();
  }

 private:
  std::string path_;
  std::ifstream in_;
  bool done_ = false;
};

bool path_exists(const std::string& path) {
  struct stat status {};
  return stat(path.c_str(), &status) == 0;
}

void make_directories(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (!path_exists(partial) && mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST)
        throw_error(
            fmt::format("cannot create output directory '{}': {}", partial, std::strerror(errno)));
    }
  }
}

// Writes one split's shards, under their .partial names until run_prep publishes them. A shard
// of at least half of shard_tokens closes before a document that would take it past
// shard_tokens, but documents that would start a new shard are held back until they amount to
// half a shard: if the input ends first they join the current shard instead. So no shard is
// smaller than half of shard_tokens (unless the whole split is), and a split's last shard is not
// a sliver too short to hold a training window.
class SplitWriter {
 public:
  SplitWriter(const PrepOptions& options, std::string name)
      : options_(options), metadata_{options.vocab_size, options.eos_id, options.tokenizer} {
    summary_.name = std::move(name);
  }

  void add(const std::vector<uint32_t>& document) {
    const auto length = static_cast<int64_t>(document.size());
    summary_.tokens += length;
    summary_.documents += 1;
    if (!writer_) open_next();
    const int64_t current = writer_->num_tokens();
    if (pending_.empty() &&
        (2 * current < options_.shard_tokens || current + length <= options_.shard_tokens)) {
      writer_->add_document(document.data(), length);
      return;
    }
    pending_.push_back(document);
    pending_tokens_ += length;
    if (2 * pending_tokens_ >= options_.shard_tokens) {
      close_current();
      open_next();
      flush_pending();
    }
  }

  SplitSummary finish() {
    if (writer_) {
      flush_pending();
      close_current();
    }
    return summary_;
  }

  // Finished shards as (partial path, final path), for run_prep to rename or remove.
  const std::vector<std::pair<std::string, std::string>>& finished() const { return finished_; }

 private:
  void open_next() {
    const std::string file = fmt::format("{}-{:05d}.h5", summary_.name, summary_.shards.size());
    // A chunk is allocated whole, so small shards get chunks no larger than themselves.
    writer_ = std::make_unique<ShardWriter>(options_.output_dir + "/" + file, metadata_,
                                            std::min(options_.chunk_tokens, options_.shard_tokens));
    summary_.shards.push_back({file, 0, 0});
  }
  void flush_pending() {
    for (const std::vector<uint32_t>& d : pending_)
      writer_->add_document(d.data(), static_cast<int64_t>(d.size()));
    pending_.clear();
    pending_tokens_ = 0;
  }
  void close_current() {
    summary_.shards.back().tokens = writer_->num_tokens();
    summary_.shards.back().documents = writer_->num_documents();
    writer_->finish(/*publish=*/false);
    finished_.emplace_back(writer_->partial_path(), writer_->path());
    writer_.reset();
  }

  const PrepOptions& options_;
  ShardMetadata metadata_;
  SplitSummary summary_;
  std::unique_ptr<ShardWriter> writer_;
  std::vector<std::vector<uint32_t>> pending_;
  int64_t pending_tokens_ = 0;
  std::vector<std::pair<std::string, std::string>> finished_;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string split_json(const SplitSummary& split) {
  std::string out = fmt::format("{{\"tokens\": {}, \"documents\": {}, \"shards\": [", split.tokens,
                                split.documents);
  for (size_t i = 0; i < split.shards.size(); ++i) {
    const ShardSummary& s = split.shards[i];
    out += fmt::format("{}\n      {{\"file\": {}, \"tokens\": {}, \"documents\": {}}}",
                       i ? "," : "", json_string(s.file), s.tokens, s.documents);
  }
  return out + (split.shards.empty() ? "]}" : "\n    ]}");
}

void write_manifest(const PrepOptions& o, const PrepSummary& summary) {
  std::string inputs;
  for (size_t i = 0; i < o.inputs.size(); ++i)
    inputs += (i ? ", " : "") + json_string(o.inputs[i]);
  const std::string text = fmt::format(
      "{{\n  \"format\": {},\n  \"format_version\": {},\n  \"tokenizer\": {},\n"
      "  \"vocab_size\": {},\n  \"eos_id\": {},\n  \"seed\": {},\n  \"val_fraction\": {},\n"
      "  \"inputs\": [{}],\n  \"splits\": {{\n    \"train\": {},\n    \"val\": {}\n  }}\n}}\n",
      json_string(kShardFormatName), kShardFormatVersion, json_string(o.tokenizer), o.vocab_size,
      o.eos_id, o.seed, o.val_fraction, inputs, split_json(summary.train), split_json(summary.val));
  const std::string partial = summary.manifest_path + ".partial";
  {
    std::ofstream out(partial);
    out << text;
    out.close();
    QWEN3_CHECK(out.good(), "cannot write '{}'", partial);
  }
  if (std::rename(partial.c_str(), summary.manifest_path.c_str()) != 0)
    throw_error(fmt::format("cannot rename '{}' to '{}': {}", partial, summary.manifest_path,
                            std::strerror(errno)));
}

void check_prep_options(const PrepOptions& o) {
  QWEN3_CHECK(!o.inputs.empty(), "no input given (--input PATH, or PATH alone)");
  QWEN3_CHECK(!o.output_dir.empty(), "no --output directory given");
  QWEN3_CHECK(o.vocab_size > 0 && o.vocab_size <= (int64_t{1} << 32),
              "--vocab-size must be in [1, 2^32], got {}", o.vocab_size);
  QWEN3_CHECK(o.eos_id >= 0 && o.eos_id < o.vocab_size,
              "--eos-id must be in [0, vocab size {}), got {}", o.vocab_size, o.eos_id);
  QWEN3_CHECK(!o.tokenizer.empty(), "--tokenizer must name the tokenizer");
  QWEN3_CHECK(o.shard_tokens >= 2, "--shard-tokens must be at least 2, got {}", o.shard_tokens);
  QWEN3_CHECK(o.chunk_tokens >= 1, "--chunk-tokens must be positive, got {}", o.chunk_tokens);
  QWEN3_CHECK(o.val_fraction >= 0.0 && o.val_fraction < 1.0,
              "--val-fraction must be in [0, 1), got {}", o.val_fraction);
  QWEN3_CHECK(o.format != PrepInputFormat::kBytes || o.vocab_size > 255,
              "--input-format bytes makes token ids 0..255, so --vocab-size must be above 255 "
              "(256 bytes plus EOS: 257), got {}",
              o.vocab_size);
}

}  // namespace

std::unique_ptr<DocumentReader> open_document_reader(const std::string& path,
                                                     PrepInputFormat format, int64_t vocab_size,
                                                     int64_t eos_id) {
  if (format == PrepInputFormat::kRawU32)
    return std::make_unique<RawU32Reader>(path, vocab_size, eos_id);
  if (format == PrepInputFormat::kBytes) {
    QWEN3_CHECK(vocab_size > 255, "byte input '{}' needs a vocabulary above 255, got {}", path,
                vocab_size);
    return std::make_unique<BytesReader>(path);
  }
  return std::make_unique<IdsTextReader>(path, vocab_size);
}

std::vector<std::string> expand_prep_inputs(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    const fs::file_status status = fs::status(input, error);
    QWEN3_CHECK(fs::exists(status), "input '{}' does not exist", input);
    if (!fs::is_directory(status)) {
      files.push_back(input);
      continue;
    }
    // The order decides which document is which, and so the validation split: sort, since a
    // directory listing's order is the file system's.
    std::vector<std::string> found;
    fs::recursive_directory_iterator it(input, error), end;
    for (; !error && it != end; it.increment(error)) {
      std::error_code ignored;
      if (it->is_regular_file(ignored)) found.push_back(it->path().string());
    }
    QWEN3_CHECK(!error, "cannot list input directory '{}': {}", input, error.message());
    QWEN3_CHECK(!found.empty(), "input directory '{}' holds no files", input);
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

PrepSummary run_prep(const PrepOptions& options) {
  check_prep_options(options);
  const std::vector<std::string> files = expand_prep_inputs(options.inputs);
  make_directories(options.output_dir);
  PrepSummary summary;
  summary.manifest_path = options.output_dir + "/manifest.json";
  for (const char* existing : {"/manifest.json", "/train-00000.h5", "/val-00000.h5"})
    QWEN3_CHECK(!path_exists(options.output_dir + existing),
                "'{}{}' already exists; write to a new directory so that existing "
                "shards are never overwritten",
                options.output_dir, existing);

  // Every shard stays under its .partial name until all are complete, so a failed or killed run
  // leaves no file that a shard glob picks up; the manifest, written last, marks completion.
  SplitWriter train(options, "train"), val(options, "val");
  try {
    std::vector<uint32_t> document;
    uint64_t index = 0;
    const auto eos = static_cast<uint32_t>(options.eos_id);
    for (const std::string& input : files) {
      auto reader = open_document_reader(input, options.format, options.vocab_size, options.eos_id);
      while (reader->next(document)) {
        if (options.append_eos && document.back() != eos) document.push_back(eos);
        // Each document's split depends on its index alone, so it is reproducible from the seed.
        const double u =
            static_cast<double>(random_bits(options.seed, kValidationStream, index++) >> 11) *
            (1.0 / 9007199254740992.0);
        (u < options.val_fraction ? val : train).add(document);
      }
    }
    summary.train = train.finish();
    summary.val = val.finish();
    QWEN3_CHECK(summary.train.tokens > 0, "the input holds no training documents");
  } catch (...) {
    for (const SplitWriter* split : {&train, &val})
      for (const auto& [partial, final_path] : split->finished())
        std::remove(partial.c_str());
    throw;
  }
  for (const SplitWriter* split : {&train, &val})
    for (const auto& [partial, final_path] : split->finished())
      if (std::rename(partial.c_str(), final_path.c_str()) != 0)
        throw_error(fmt::format("cannot rename '{}' to '{}': {}", partial, final_path,
                                std::strerror(errno)));
  write_manifest(options, summary);
  return summary;
}

CheckSummary check_shards(const std::string& pattern, int64_t vocab_size) {
  CheckSummary summary;
  std::vector<uint32_t> block;
  constexpr int64_t kBlockTokens = int64_t{1} << 22;  // 16 MiB reads
  for (const std::string& path : expand_shard_pattern(pattern, "--check")) {
    ShardReader shard(path);
    const ShardInfo& info = shard.info();
    const int64_t limit = vocab_size > 0 ? vocab_size : info.vocab_size;
    for (int64_t begin = 0; begin < info.num_tokens; begin += kBlockTokens) {
      const int64_t count = std::min(kBlockTokens, info.num_tokens - begin);
      block.resize(static_cast<size_t>(count));
      shard.read_tokens(begin, count, block.data());
      for (int64_t i = 0; i < count; ++i) {
        const uint32_t token = block[static_cast<size_t>(i)];
        if (token >= limit)
          throw_error(
              fmt::format("data shard '{}': token {} at position {} is not below "
                          "vocab_size {}",
                          path, token, begin + i, limit));
        summary.largest_token = std::max(summary.largest_token, token);
      }
    }
    summary.shards += 1;
    summary.tokens += info.num_tokens;
    summary.documents += info.num_documents;
  }
  return summary;
}

}  // namespace qwen3
