#include "dataloader/prep.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/util/error.h"
#include "core/util/file_io.h"
#include "core/util/rng.h"
#include "dataloader/prep_pipeline.h"
#include "dataloader/prep_progress.h"
#include "dataloader/prep_readers.h"
#include "dataloader/prep_split.h"
#include "dataloader/shard_reader.h"
#include "dataloader/source.h"

namespace qwen3 {

namespace {

// Stream of the counter-based RNG that picks validation documents.
constexpr uint64_t kValidationStream = 0x76616c;  // "val"
// Raw text handed to a tokenizing thread at once, and batches queued per thread: enough to keep
// every thread busy, little enough memory.
constexpr size_t kBatchBytes = size_t{256} << 10;
constexpr size_t kBatchesPerThread = 4;
// Test hook: SIGKILL this process when it has completed this many shards, after writing the last
// one and before recording it, so that tests can show a killed run resumes exactly.
constexpr const char* kKillAtShardEnv = "QWEN3_TEST_PREP_KILL_AT_SHARD";

bool path_exists(const std::string& path) {
  struct stat status {};
  return stat(path.c_str(), &status) == 0;
}

int64_t file_size(const std::string& path) {
  struct stat status {};
  QWEN3_CHECK(stat(path.c_str(), &status) == 0, "cannot read the size of input '{}': {}", path,
              std::strerror(errno));
  return static_cast<int64_t>(status.st_size);
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

const char* format_name(PrepInputFormat format) {
  switch (format) {
    case PrepInputFormat::kIdsText:
      return "ids";
    case PrepInputFormat::kRawU32:
      return "u32";
    case PrepInputFormat::kBytes:
      return "bytes";
    case PrepInputFormat::kText:
      return "text";
    case PrepInputFormat::kJsonl:
      return "jsonl";
  }
  return "?";
}

const char* invalid_utf8_name(InvalidUtf8 policy) {
  switch (policy) {
    case InvalidUtf8::kError:
      return "error";
    case InvalidUtf8::kReplace:
      return "replace";
    case InvalidUtf8::kSkip:
      return "skip";
  }
  return "?";
}

// Each document's split depends on its index alone, so it is reproducible from the seed.
bool is_validation(const PrepOptions& options, int64_t index) {
  const double u =
      static_cast<double>(
          random_bits(options.seed, kValidationStream, static_cast<uint64_t>(index)) >> 11) *
      (1.0 / 9007199254740992.0);
  return u < options.val_fraction;
}

// Everything that decides the output, for prep-progress.json: a run resumes only with the same.
std::string run_settings(const PrepOptions& o, const std::vector<std::string>& files,
                         const Tokenizer* tokenizer) {
  nlohmann::json listed = nlohmann::json::array();
  for (const std::string& file : files)
    listed.push_back({{"path", file}, {"bytes", file_size(file)}});
  nlohmann::json settings = {{"format", format_name(o.format)},
                             {"inputs", o.inputs},
                             {"files", listed},
                             {"vocab_size", o.vocab_size},
                             {"eos_id", o.eos_id},
                             {"tokenizer", o.tokenizer},
                             {"shard_tokens", o.shard_tokens},
                             {"chunk_tokens", o.chunk_tokens},
                             {"val_fraction", o.val_fraction},
                             {"seed", o.seed},
                             {"append_eos", o.append_eos},
                             {"extensions", o.extensions}};
  if (tokenizer) {
    settings["tokenizer_fingerprint"] = tokenizer->fingerprint();
    settings["jsonl_field"] = o.format == PrepInputFormat::kJsonl ? o.jsonl_field : "";
    settings["invalid_utf8"] = invalid_utf8_name(o.invalid_utf8);
  }
  return settings.dump();
}

nlohmann::ordered_json split_manifest(const SplitSummary& split) {
  nlohmann::ordered_json shards = nlohmann::ordered_json::array();
  for (const ShardSummary& s : split.shards)
    shards.push_back({{"file", s.file}, {"tokens", s.tokens}, {"documents", s.documents}});
  return {{"tokens", split.tokens}, {"documents", split.documents}, {"shards", shards}};
}

void write_manifest(const PrepOptions& o, const PrepSummary& summary, const Tokenizer* tokenizer) {
  nlohmann::ordered_json manifest = {{"format", kShardFormatName},
                                     {"format_version", kShardFormatVersion},
                                     {"tokenizer", o.tokenizer},
                                     {"vocab_size", o.vocab_size},
                                     {"eos_id", o.eos_id},
                                     {"seed", o.seed},
                                     {"val_fraction", o.val_fraction},
                                     {"inputs", o.inputs},
                                     {"input_format", format_name(o.format)}};
  if (tokenizer) {
    manifest["tokenizer_fingerprint"] = tokenizer->fingerprint();
    manifest["empty_documents"] = summary.empty_documents;
    manifest["invalid_utf8_documents"] = summary.invalid_utf8_documents;
  }
  manifest["splits"] = {{"train", split_manifest(summary.train)},
                        {"val", split_manifest(summary.val)}};
  write_file_atomic(summary.manifest_path, manifest.dump(2) + "\n");
}

void check_prep_options(const PrepOptions& o) {
  QWEN3_CHECK(!o.inputs.empty(), "no input given (--input PATH, or PATH alone)");
  QWEN3_CHECK(!o.output_dir.empty(), "no --output directory given");
  QWEN3_CHECK(o.vocab_size > 0 && o.vocab_size <= (int64_t{1} << 32),
              "--vocab-size must be in [1, 2^32], got {}", o.vocab_size);
  QWEN3_CHECK(o.eos_id >= 0 && o.eos_id < o.vocab_size,
              "--eos-id must be in [0, vocab size {}), got {}", o.vocab_size, o.eos_id);
  QWEN3_CHECK(!o.tokenizer.empty(), "--tokenizer (or --tokenizer-name) must name the tokenizer");
  QWEN3_CHECK(o.shard_tokens >= 2, "--shard-tokens must be at least 2, got {}", o.shard_tokens);
  QWEN3_CHECK(o.chunk_tokens >= 1, "--chunk-tokens must be positive, got {}", o.chunk_tokens);
  QWEN3_CHECK(o.val_fraction >= 0.0 && o.val_fraction < 1.0,
              "--val-fraction must be in [0, 1), got {}", o.val_fraction);
  QWEN3_CHECK(o.format != PrepInputFormat::kBytes || o.vocab_size > 255,
              "--input-format bytes makes token ids 0..255, so --vocab-size must be above 255 "
              "(256 bytes plus EOS: 257), got {}",
              o.vocab_size);
  QWEN3_CHECK(o.threads >= 0, "--threads must not be negative, got {}", o.threads);
  QWEN3_CHECK(o.format != PrepInputFormat::kJsonl || !o.jsonl_field.empty(),
              "--jsonl-field must name a field");
}

// Fills in a text format's vocabulary size and EOS from the tokenizer, or checks the given ones.
void resolve_tokenizer_options(PrepOptions& o, const Tokenizer& tokenizer) {
  if (o.vocab_size == 0) o.vocab_size = tokenizer.vocab_size();
  QWEN3_CHECK(o.vocab_size >= tokenizer.vocab_size(),
              "--vocab-size {} is smaller than the tokenizer, whose ids go up to {}", o.vocab_size,
              tokenizer.vocab_size() - 1);
  if (o.eos_id < 0) {
    const auto eos = tokenizer.find_token("<|endoftext|>");
    QWEN3_CHECK(eos.has_value(), "the tokenizer has no <|endoftext|> token; give --eos-id");
    o.eos_id = *eos;
  }
}

// One run of qwen3-prep, fresh or resumed from `record`.
class PrepRun {
 public:
  PrepRun(const PrepOptions& options, std::vector<std::string> files, const Tokenizer* tokenizer,
          PrepProgressRecord record)
      : options_(options),
        files_(std::move(files)),
        tokenizer_(tokenizer),
        record_(std::move(record)),
        progress_path_(options.output_dir + "/" + kPrepProgressFile),
        train_(options, "train", record_.train, [this] { checkpoint(); }),
        val_(options, "val", record_.val, [this] { checkpoint(); }),
        start_time_(std::chrono::steady_clock::now()) {
    resume_from_[0] = record_.train.next.document;
    resume_from_[1] = record_.val.next.document;
    int64_t before = 0;
    for (const std::string& file : files_) {
      bytes_before_file_.push_back(before);
      before += file_size(file);
    }
    bytes_before_file_.push_back(before);
    if (const char* kill_at = std::getenv(kKillAtShardEnv)) kill_at_shard_ = std::atoi(kill_at);
  }

  PrepSummary run() {
    PrepSummary summary;
    summary.manifest_path = options_.output_dir + "/manifest.json";
    summary.vocab_size = options_.vocab_size;
    summary.eos_id = options_.eos_id;
    // Copied: the record changes as shards complete.
    const DocumentPosition start = record_.train.next.document <= record_.val.next.document
                                       ? record_.train.next
                                       : record_.val.next;
    summary.resumed_shards =
        static_cast<int64_t>(record_.train.shards.size() + record_.val.shards.size());
    if (summary.resumed_shards > 0) summary.resumed_at_document = start.document;
    try {
      if (!record_.finished) {
        if (tokenizer_)
          read_text_documents(start);
        else
          read_token_documents(start);
        const DocumentPosition end{next_index_, static_cast<int64_t>(files_.size()), {}};
        train_.finish(end);
        val_.finish(end);
        record_.train = train_.progress();
        record_.val = val_.progress();
        record_.finished = true;
        write_file_atomic(progress_path_, progress_to_json(record_));
      }
      summary.train = train_.summary();
      summary.val = val_.summary();
      QWEN3_CHECK(summary.train.tokens > 0, "the input holds no training documents");
    } catch (...) {
      for (const SplitWriter* split : {&train_, &val_})
        for (const std::string& path : split->partial_paths())
          std::remove(path.c_str());
      std::remove(progress_path_.c_str());
      throw;
    }
    summary.empty_documents = train_.empty_documents() + val_.empty_documents();
    summary.invalid_utf8_documents =
        train_.invalid_utf8_documents() + val_.invalid_utf8_documents();
    report_progress(/*force=*/true);
    publish(summary);
    return summary;
  }

 private:
  SplitWriter& split_of(int64_t index) { return is_validation(options_, index) ? val_ : train_; }
  // False for a document that a completed shard of an earlier, killed run already holds.
  bool wanted(int64_t index) const {
    return index >= resume_from_[is_validation(options_, index) ? 1 : 0];
  }

  void write(std::vector<uint32_t>& document, const DocumentPosition& position) {
    const auto eos = static_cast<uint32_t>(options_.eos_id);
    if (options_.append_eos && document.back() != eos) document.push_back(eos);
    split_of(position.document).add(document, position);
    documents_written_ += 1;
    tokens_written_ += static_cast<int64_t>(document.size());
  }

  void read_token_documents(const DocumentPosition& start) {
    std::vector<uint32_t> document;
    next_index_ = start.document;
    for (auto file = static_cast<size_t>(start.file); file < files_.size(); ++file) {
      const FileLocation from =
          file == static_cast<size_t>(start.file) ? start.location : FileLocation{};
      auto reader = open_document_reader(files_[file], options_.format, options_.vocab_size,
                                         options_.eos_id, from);
      while (reader->next(document)) {
        const DocumentPosition position{next_index_++, static_cast<int64_t>(file),
                                        reader->location()};
        if (!wanted(position.document)) continue;
        write(document, position);
        bytes_done_ = bytes_before_file_[file] + position.location.offset;
        report_progress(false);
      }
      bytes_done_ = bytes_before_file_[file + 1];
    }
  }

  void read_text_documents(const DocumentPosition& start) {
    const TextSettings settings{options_.format, options_.jsonl_field, options_.invalid_utf8};
    const int threads = options_.threads > 0
                            ? options_.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    TokenizingPool pool(*tokenizer_, settings, files_, threads);
    const size_t max_in_flight = kBatchesPerThread * static_cast<size_t>(threads);
    auto batch = std::make_unique<TextBatch>();
    bool batch_failed = false;
    const auto drain = [&](size_t keep) {
      while (pool.in_flight() > keep) {
        std::unique_ptr<TextBatch> done = pool.take_oldest();
        if (done->error) {
          batch_failed = true;
          std::rethrow_exception(done->error);
        }
        for (TextDocument& document : done->documents)
          write_text(document);
        report_progress(false);
      }
    };
    const auto submit = [&] {
      if (batch->documents.empty()) return;
      pool.submit(std::move(batch));
      batch = std::make_unique<TextBatch>();
      drain(max_in_flight);
    };
    const auto add = [&](std::string raw, const DocumentPosition& position) {
      batch->raw_bytes += raw.size();
      batch->documents.push_back({std::move(raw), position, TextOutcome::kDocument, {}});
      if (batch->raw_bytes >= kBatchBytes) submit();
    };

    next_index_ = start.document;
    try {
      std::string line;
      for (auto file = static_cast<size_t>(start.file); file < files_.size(); ++file) {
        const auto file_index = static_cast<int64_t>(file);
        if (options_.format == PrepInputFormat::kText) {
          // A whole file is a document: one not wanted is not even read.
          const DocumentPosition position{next_index_++, file_index, {}};
          if (wanted(position.document)) add(read_file(files_[file]), position);
        } else {
          JsonlLineReader reader(files_[file], file == static_cast<size_t>(start.file)
                                                   ? start.location
                                                   : FileLocation{});
          while (reader.next(line)) {
            const DocumentPosition position{next_index_++, file_index, reader.location()};
            if (wanted(position.document)) add(std::move(line), position);
          }
        }
      }
      submit();
    } catch (...) {
      // A failed read comes after the documents already handed out, whose own errors come first.
      // A failed batch is the first error itself: the batches after it are left alone.
      if (!batch_failed) {
        batch.reset();
        drain(0);
      }
      throw;
    }
    drain(0);
  }

  void write_text(TextDocument& document) {
    SplitWriter& split = split_of(document.position.document);
    switch (document.outcome) {
      case TextOutcome::kEmpty:
        split.count_empty();
        break;
      case TextOutcome::kSkippedInvalid:
        split.count_invalid_utf8();
        break;
      case TextOutcome::kDocument:
        write(document.tokens, document.position);
        break;
      case TextOutcome::kRepairedDocument:
        write(document.tokens, document.position);
        split.count_invalid_utf8();
        break;
    }
    bytes_done_ =
        std::max(bytes_done_, bytes_before_file_[static_cast<size_t>(document.position.file)] +
                                  document.position.location.offset);
  }

  void checkpoint() {
    record_.train = train_.progress();
    record_.val = val_.progress();
    if (++shards_completed_ == kill_at_shard_) std::raise(SIGKILL);
    write_file_atomic(progress_path_, progress_to_json(record_));
  }

  void report_progress(bool force) {
    if (!options_.on_progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_report_ < std::chrono::milliseconds(250)) return;
    last_report_ = now;
    PrepProgress progress;
    progress.bytes_total = bytes_before_file_.back();
    progress.bytes_done = force ? progress.bytes_total : bytes_done_;
    progress.documents = documents_written_;
    progress.tokens = tokens_written_;
    progress.seconds = std::chrono::duration<double>(now - start_time_).count();
    options_.on_progress(progress);
  }

  // Renames every shard into place (those a killed publish renamed already stay), then writes the
  // manifest, which marks the run complete, and drops the progress record.
  void publish(const PrepSummary& summary) {
    for (const SplitSummary* split : {&summary.train, &summary.val})
      for (const ShardSummary& shard : split->shards) {
        const std::string final_path = options_.output_dir + "/" + shard.file;
        const std::string partial = final_path + ".partial";
        if (!path_exists(partial) && path_exists(final_path)) continue;
        if (std::rename(partial.c_str(), final_path.c_str()) != 0)
          throw_error(fmt::format("cannot rename '{}' to '{}': {}", partial, final_path,
                                  std::strerror(errno)));
      }
    fsync_path(options_.output_dir);
    write_manifest(options_, summary, tokenizer_);
    std::remove(progress_path_.c_str());
  }

  const PrepOptions& options_;
  const std::vector<std::string> files_;
  const Tokenizer* tokenizer_;
  PrepProgressRecord record_;
  const std::string progress_path_;
  SplitWriter train_, val_;
  int64_t resume_from_[2] = {0, 0};  // train, val: the first document index not yet written
  std::vector<int64_t> bytes_before_file_;
  int64_t next_index_ = 0;
  int64_t bytes_done_ = 0, documents_written_ = 0, tokens_written_ = 0;
  int shards_completed_ = 0, kill_at_shard_ = -1;
  std::chrono::steady_clock::time_point start_time_, last_report_;
};

// Before a resume: every shard the record lists must be there, byte for byte as it was written.
void verify_recorded_shards(const std::string& dir, const PrepProgressRecord& record,
                            const std::string& progress_path) {
  for (const SplitProgress* split : {&record.train, &record.val})
    for (const CompletedShard& shard : split->shards) {
      std::string path = dir + "/" + shard.file + ".partial";
      if (!path_exists(path) && record.finished) path = dir + "/" + shard.file;
      QWEN3_CHECK(path_exists(path),
                  "cannot resume: shard '{}' recorded in '{}' is missing; remove the output "
                  "directory and start again",
                  path, progress_path);
      const FileChecksum checksum = checksum_file(path);
      QWEN3_CHECK(checksum.bytes == shard.bytes && checksum.crc32 == shard.crc32,
                  "cannot resume: shard '{}' has changed since '{}' recorded it ({} bytes, CRC-32 "
                  "{:08x}; recorded {} bytes, {:08x}); remove the output directory and start "
                  "again",
                  path, progress_path, checksum.bytes, checksum.crc32, shard.bytes, shard.crc32);
    }
}

// Shard files of a run that was killed before recording them: written again from their start.
void remove_unrecorded_partials(const std::string& dir, const PrepProgressRecord& record) {
  namespace fs = std::filesystem;
  std::vector<std::string> recorded;
  for (const SplitProgress* split : {&record.train, &record.val})
    for (const CompletedShard& shard : split->shards)
      recorded.push_back(shard.file + ".partial");
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const bool shard_partial = (name.rfind("train-", 0) == 0 || name.rfind("val-", 0) == 0) &&
                               name.size() > 11 &&
                               name.compare(name.size() - 11, 11, ".h5.partial") == 0;
    if (shard_partial && std::find(recorded.begin(), recorded.end(), name) == recorded.end())
      std::remove(it->path().c_str());
  }
}

}  // namespace

std::vector<std::string> expand_prep_inputs(const std::vector<std::string>& inputs,
                                            const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  const auto wanted = [&](const std::string& name) {
    if (extensions.empty()) return true;
    for (const std::string& extension : extensions)
      if (name.size() >= extension.size() &&
          name.compare(name.size() - extension.size(), extension.size(), extension) == 0)
        return true;
    return false;
  };
  std::string listed;
  for (const std::string& extension : extensions)
    listed += (listed.empty() ? "" : ", ") + extension;
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
      if (it->is_regular_file(ignored) && wanted(it->path().filename().string()))
        found.push_back(it->path().string());
    }
    QWEN3_CHECK(!error, "cannot list input directory '{}': {}", input, error.message());
    QWEN3_CHECK(!found.empty(), "input directory '{}' holds no files{}", input,
                extensions.empty() ? "" : " ending in " + listed);
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

PrepSummary run_prep(const PrepOptions& given) {
  PrepOptions options = given;
  std::unique_ptr<Tokenizer> tokenizer;
  if (is_text_format(options.format)) {
    QWEN3_CHECK(!options.tokenizer_files.empty(),
                "text input needs the tokenizer's files: --tokenizer DIR, or --vocab and --merges, "
                "or --tokenizer-json");
    tokenizer = std::make_unique<Tokenizer>(load_tokenizer(options.tokenizer_files));
    resolve_tokenizer_options(options, *tokenizer);
  }
  check_prep_options(options);
  std::vector<std::string> files = expand_prep_inputs(options.inputs, options.extensions);
  make_directories(options.output_dir);
  const std::string manifest = options.output_dir + "/manifest.json";
  const std::string progress_path = options.output_dir + "/" + kPrepProgressFile;
  const std::string overwrite_hint =
      "write to a new directory so that existing shards are never overwritten";
  QWEN3_CHECK(!path_exists(manifest), "'{}' already exists; {}", manifest, overwrite_hint);

  PrepProgressRecord record;
  record.settings = run_settings(options, files, tokenizer.get());
  if (path_exists(progress_path)) {
    const PrepProgressRecord recorded = progress_from_json(read_file(progress_path), progress_path);
    const std::string difference = settings_difference(recorded.settings, record.settings);
    QWEN3_CHECK(difference.empty(),
                "cannot resume the run recorded in '{}': {}; rerun with the same inputs and "
                "settings to resume it, or write to a new directory",
                progress_path, difference);
    verify_recorded_shards(options.output_dir, recorded, progress_path);
    record = recorded;
  } else {
    for (const char* existing : {"/train-00000.h5", "/val-00000.h5"})
      QWEN3_CHECK(!path_exists(options.output_dir + existing), "'{}{}' already exists; {}",
                  options.output_dir, existing, overwrite_hint);
  }
  remove_unrecorded_partials(options.output_dir, record);
  PrepRun run(options, std::move(files), tokenizer.get(), std::move(record));
  return run.run();
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
