#include "dataloader/prep_readers.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "dataloader/tokenizer/unicode.h"

namespace qwen3 {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "raw uint32 input is read as little-endian by a plain copy");

namespace {

class IdsTextReader : public DocumentReader {
 public:
  IdsTextReader(std::string path, int64_t vocab_size, FileLocation start)
      : path_(std::move(path)), vocab_(vocab_size), offset_(start.offset) {
    in_.open(path_);
    QWEN3_CHECK(in_.is_open(), "cannot open input '{}': {}", path_, std::strerror(errno));
    if (start.offset > 0) in_.seekg(start.offset);
    line_number_ = start.line - 1;
  }
  bool next(std::vector<uint32_t>& document) override {
    document.clear();
    while (document.empty()) {
      location_ = {offset_, line_number_ + 1};
      if (!std::getline(in_, line_)) {
        QWEN3_CHECK(!in_.bad(), "reading input '{}' failed at line {}", path_, line_number_);
        return false;
      }
      ++line_number_;
      offset_ += static_cast<int64_t>(line_.size()) + 1;
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
  FileLocation location() const override { return location_; }

 private:
  std::string path_;
  int64_t vocab_;
  std::ifstream in_;
  std::string line_;
  int64_t line_number_ = 0, offset_ = 0;
  FileLocation location_;
};

class RawU32Reader : public DocumentReader {
 public:
  RawU32Reader(std::string path, int64_t vocab_size, int64_t eos_id, FileLocation start)
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
    position_ = start.offset / 4;
    if (start.offset > 0 && std::fseek(file_, start.offset, SEEK_SET) != 0) {
      std::fclose(file_);
      throw_error(fmt::format("cannot seek to byte {} of input '{}'", start.offset, path_));
    }
  }
  ~RawU32Reader() override { std::fclose(file_); }

  bool next(std::vector<uint32_t>& document) override {
    document.clear();
    document_start_ = position_ + static_cast<int64_t>(cursor_);
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
  FileLocation location() const override { return {4 * document_start_, 1}; }

 private:
  bool refill() {
    position_ += static_cast<int64_t>(block_.size());
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
  int64_t position_ = 0;        // tokens before block_
  int64_t document_start_ = 0;  // token index where the last document starts
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
  FileLocation location() const override { return {}; }

 private:
  std::string path_;
  std::ifstream in_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<DocumentReader> open_document_reader(const std::string& path,
                                                     PrepInputFormat format, int64_t vocab_size,
                                                     int64_t eos_id, FileLocation start) {
  if (format == PrepInputFormat::kRawU32)
    return std::make_unique<RawU32Reader>(path, vocab_size, eos_id, start);
  if (format == PrepInputFormat::kBytes) {
    QWEN3_CHECK(vocab_size > 255, "byte input '{}' needs a vocabulary above 255, got {}", path,
                vocab_size);
    return std::make_unique<BytesReader>(path);
  }
  QWEN3_CHECK(format == PrepInputFormat::kIdsText,
              "input '{}': text formats are read through the tokenizer, not as token ids", path);
  return std::make_unique<IdsTextReader>(path, vocab_size, start);
}

JsonlLineReader::JsonlLineReader(std::string path, FileLocation start)
    : path_(std::move(path)),
      buffer_(size_t{1} << 20),
      offset_(start.offset),
      next_line_(start.line) {
  file_ = std::fopen(path_.c_str(), "rb");
  QWEN3_CHECK(file_ != nullptr, "cannot open input '{}': {}", path_, std::strerror(errno));
  if (start.offset > 0 && std::fseek(file_, start.offset, SEEK_SET) != 0) {
    std::fclose(file_);
    throw_error(fmt::format("cannot seek to byte {} of input '{}'", start.offset, path_));
  }
}

JsonlLineReader::~JsonlLineReader() {
  std::fclose(file_);
}

bool JsonlLineReader::next(std::string& line) {
  for (;;) {
    line.clear();
    const FileLocation start{offset_, next_line_};
    if (!read_line(line)) return false;
    ++next_line_;
    if (line.find_first_not_of(" \t\r") != std::string::npos) {
      location_ = start;
      return true;
    }
  }
}

// Appends the bytes up to the next '\n' (consumed, not appended); false at the end of the file.
bool JsonlLineReader::read_line(std::string& line) {
  bool read_any = false;
  for (;;) {
    if (cursor_ == filled_) {
      filled_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
      cursor_ = 0;
      QWEN3_CHECK(!std::ferror(file_), "reading input '{}' failed: {}", path_,
                  std::strerror(errno));
      if (filled_ == 0) return read_any;
    }
    read_any = true;
    const char* begin = buffer_.data() + cursor_;
    const auto* newline = static_cast<const char*>(std::memchr(begin, '\n', filled_ - cursor_));
    const size_t length = newline ? static_cast<size_t>(newline - begin) : filled_ - cursor_;
    line.append(begin, length);
    cursor_ += length;
    offset_ += static_cast<int64_t>(length);
    if (newline) {
      ++cursor_;
      ++offset_;
      return true;
    }
  }
}

TextOutcome tokenize_text_document(const std::string& raw, const TextSettings& settings,
                                   const std::string& path, FileLocation location, Encoder& encoder,
                                   std::vector<uint32_t>& tokens) {
  tokens.clear();
  std::string_view bytes = raw;
  std::string repaired;
  bool was_repaired = false;
  const size_t invalid = find_invalid_utf8(bytes);
  if (invalid != std::string_view::npos) {
    if (settings.invalid_utf8 == InvalidUtf8::kSkip) return TextOutcome::kSkippedInvalid;
    if (settings.invalid_utf8 == InvalidUtf8::kError) {
      const auto line = location.line + std::count(raw.begin(), raw.begin() + invalid, '\n');
      throw_error(fmt::format(
          "{}:{}: byte {} of the file (0x{:02X}) is not valid UTF-8; fix the input, or pass "
          "--invalid-utf8 replace (U+FFFD for each bad sequence) or skip (leave such documents "
          "out)",
          path, line, location.offset + static_cast<int64_t>(invalid),
          static_cast<uint8_t>(raw[invalid])));
    }
    replace_invalid_utf8(bytes, repaired);
    bytes = repaired;
    was_repaired = true;
  }

  std::string field;
  if (settings.format == PrepInputFormat::kJsonl) {
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(bytes);
    } catch (const nlohmann::json::exception& e) {
      throw_error(fmt::format("{}:{}: not a JSON object: {}", path, location.line, e.what()));
    }
    QWEN3_CHECK(object.is_object(), "{}:{}: expected a JSON object per line, found a JSON {}", path,
                location.line, object.type_name());
    const auto value = object.find(settings.jsonl_field);
    if (value == object.end()) {
      std::string keys;
      for (auto it = object.begin(); it != object.end(); ++it)
        keys += (keys.empty() ? "'" : ", '") + it.key() + "'";
      throw_error(
          fmt::format("{}:{}: no field '{}' (choose the text's field with "
                      "--jsonl-field; this line has {})",
                      path, location.line, settings.jsonl_field, keys.empty() ? "none" : keys));
    }
    QWEN3_CHECK(value->is_string(), "{}:{}: field '{}' is a {}, not a string", path, location.line,
                settings.jsonl_field, value->type_name());
    field = value->get<std::string>();
    bytes = field;
  }
  if (bytes.empty()) return TextOutcome::kEmpty;
  encoder.encode(bytes, tokens);
  return was_repaired ? TextOutcome::kRepairedDocument : TextOutcome::kDocument;
}

}  // namespace qwen3
