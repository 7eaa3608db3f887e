// qwen3-bench-loader: how fast the training loader (dataloader/loader.h) feeds one rank, on
// synthetic shards it writes first. A benchmark, not a test: it prints figures and their ratio to
// the target, and fails only on errors.
//
//   qwen3-bench-loader [--dir DIR] [--keep] [--shards N] [--shard-tokens N] [--seq-len T]
//                      [--global-batch B] [--world-size W] [--steps N] [--vocab-size V]
//                      [--prefetch P] [--step-ms MS]
//
// Shards go to a fresh directory under $TMPDIR (or /tmp), removed at exit unless --keep. The slow
// consumer's step is --step-ms, by default twice the loader's page-cache time per batch.
// The loader is rank 0 of W, so it reads global_batch / W rows per step like one rank of a real
// run. Printed: tokens/s from the page cache and from cold reads, and how long a consumer slower
// than the loader waits for its batches. The target: one H200 trains the 0.6B model at about 80k
// tokens/s, and the loader should stay out of sight at 100x that, 8M tokens/s per rank.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "core/util/format.h"
#include "core/util/rng.h"
#include "dataloader/loader.h"
#include "dataloader/shard_format.h"
#include "dataloader/shard_writer.h"

namespace {

using namespace qwen3;
using Clock = std::chrono::steady_clock;

constexpr double kTargetTokensPerSecond = 8e6;
constexpr uint64_t kDataSeed = 20240611;  // the shards' contents; fixed so runs compare
constexpr int64_t kConsumerSteps = 50;

struct Options {
  std::string dir;  // empty: a fresh mkdtemp directory
  bool keep = false;
  int64_t shards = 4, shard_tokens = int64_t{32} << 20, seq_len = 2048, global_batch = 64;
  int64_t world_size = 8, steps = 0, vocab_size = 151936, prefetch = 4;
  double step_ms = 0;  // 0: twice the page-cache time per batch
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Options parse_options(int argc, char** argv) {
  Options o;
  const std::pair<const char*, int64_t*> counts[] = {
      {"--shards", &o.shards},         {"--shard-tokens", &o.shard_tokens},
      {"--seq-len", &o.seq_len},       {"--global-batch", &o.global_batch},
      {"--world-size", &o.world_size}, {"--steps", &o.steps},
      {"--vocab-size", &o.vocab_size}, {"--prefetch", &o.prefetch}};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--keep") {
      o.keep = true;
      continue;
    }
    const auto count = std::find_if(std::begin(counts), std::end(counts),
                                    [&](const auto& c) { return flag == c.first; });
    QWEN3_CHECK(count != std::end(counts) || flag == "--dir" || flag == "--step-ms",
                "unknown flag '{}'; flags: --dir --keep --shards --shard-tokens --seq-len "
                "--global-batch --world-size --steps --vocab-size --prefetch --step-ms",
                flag);
    QWEN3_CHECK(i + 1 < argc, "{} needs a value", flag);
    const std::string value = argv[++i];
    if (flag == "--dir") {
      o.dir = value;
      continue;
    }
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    QWEN3_CHECK(*end == '\0' && number > 0 && (flag == "--step-ms" || number == int64_t(number)),
                "{} takes a positive {}, got '{}'", flag,
                flag == "--step-ms" ? "number" : "integer", value);
    if (flag == "--step-ms")
      o.step_ms = number;
    else
      *count->second = static_cast<int64_t>(number);
  }
  // Checked before writing shards, which can take a while.
  check_batch_geometry(o.seq_len, o.global_batch, 0, static_cast<int>(o.world_size), "benchmark");
  QWEN3_CHECK(o.shard_tokens > o.seq_len, "--shard-tokens must exceed --seq-len (one window)");
  QWEN3_CHECK(o.vocab_size >= 2, "--vocab-size must leave room for EOS and one other token");
  return o;
}

// Documents of 50..4,000 tokens below EOS, each ending in EOS, filling exactly shard_tokens.
// Counter-based random numbers make the shards identical on every run.
void write_shard(const std::string& path, int64_t index, const Options& o) {
  const int64_t eos = o.vocab_size - 1;
  ShardWriter writer(path, {o.vocab_size, eos, "synthetic"}, kDefaultChunkTokens);
  const auto stream = static_cast<uint64_t>(index);
  uint64_t counter = 0;
  std::vector<uint32_t> doc;
  for (int64_t left = o.shard_tokens; left > 0;) {
    const auto length =
        std::min<int64_t>(left, 50 + random_bits(kDataSeed, stream, counter++) % 3951);
    doc.resize(static_cast<size_t>(length));
    for (int64_t t = 0; t + 1 < length; ++t)
      doc[t] = static_cast<uint32_t>(random_bits(kDataSeed, stream, counter++) % eos);
    doc.back() = static_cast<uint32_t>(eos);
    writer.add_document(doc.data(), length);
    left -= length;
  }
  writer.finish();
}

int open_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  QWEN3_CHECK(fd >= 0, "cannot open '{}': {}", path, std::strerror(errno));
  return fd;
}

// Reads every file through so that the loader's reads are then served from memory.
void read_through(const std::vector<std::string>& paths) {
  std::vector<char> buffer(size_t{1} << 20);
  for (const std::string& path : paths) {
    const int fd = open_file(path);
    ssize_t n = 0;
    while ((n = ::read(fd, buffer.data(), buffer.size())) > 0) {
    }
    ::close(fd);
    QWEN3_CHECK(n == 0, "cannot read '{}': {}", path, std::strerror(errno));
  }
}

// Asks the kernel to drop the file's cached pages. Best effort: DONTNEED skips dirty pages (hence
// the fsync first), and tmpfs or pages mapped by another process stay in memory regardless.
void evict(const std::string& path) {
  const int fd = open_file(path);
  ::fsync(fd);
  const int status = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  QWEN3_CHECK(status == 0, "posix_fadvise on '{}' failed: {}", path, std::strerror(status));
}

// Fraction of the file's pages in the page cache, from mincore() over a mapping that touches none.
double cached_fraction(const std::string& path) {
  const int fd = open_file(path);
  struct stat st {};
  ::fstat(fd, &st);
  const auto size = static_cast<size_t>(st.st_size), page = static_cast<size_t>(getpagesize());
  void* map = size ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (map == MAP_FAILED) return 0;
  std::vector<unsigned char> resident((size + page - 1) / page);
  const bool ok = ::mincore(map, size, resident.data()) == 0;
  ::munmap(map, size);
  if (!ok) return 0;
  const auto cached = std::count_if(resident.begin(), resident.end(), [](auto r) { return r & 1; });
  return double(cached) / double(resident.size());
}

struct Pass {
  double open_s = 0, run_s = 0;  // building the loader; taking every batch
  double first_wait_s = 0, later_wait_s = 0, max_later_wait_s = 0;
};

// Takes `steps` batches from a fresh loader. After each it busy-waits `step_s`, as the host
// thread of a training step does: CUDA's synchronize spins by default, so a sleeping consumer
// would lend the loader a core that a real run does not.
Pass run_loader(const LoaderConfig& config, int64_t steps, double step_s) {
  Pass p;
  const auto built = Clock::now();
  TrainLoader loader(config);
  p.open_s = seconds_since(built);
  const auto start = Clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    const LoaderBatch b = loader.next();
    QWEN3_CHECK(b.step == s && b.batch.batch == loader.rows_per_rank(), "bad batch at step {}", s);
    const double wait = loader.last_wait_seconds();
    if (s == 0)
      p.first_wait_s = wait;
    else
      p.max_later_wait_s = std::max(p.max_later_wait_s, wait);
    const auto until = Clock::now() + std::chrono::duration<double>(step_s);
    while (step_s > 0 && Clock::now() < until) {
    }
  }
  p.run_s = seconds_since(start);
  p.later_wait_s = loader.wait_seconds() - p.first_wait_s;
  return p;
}

std::string rate(double tokens_per_s) {
  return fmt::format("{:.1f}M tokens/s per rank ({:.2f}x the 8M target)", tokens_per_s / 1e6,
                     tokens_per_s / kTargetTokensPerSecond);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::string made_dir;  // removed at exit, with `written`, unless --keep
  std::vector<std::string> written;
  bool keep = false;
  int status = 0;
  try {
    const Options o = parse_options(argc, argv);
    keep = o.keep;
    std::string dir = o.dir;
    if (dir.empty()) {
      std::string pattern = (fs::temp_directory_path() / "qwen3-bench-loader.XXXXXX").string();
      QWEN3_CHECK(::mkdtemp(pattern.data()), "mkdtemp failed: {}", std::strerror(errno));
      dir = made_dir = pattern;
    }
    fs::create_directories(dir);

    const int64_t rows = o.global_batch / o.world_size, step_tokens = rows * o.seq_len;
    // One pass over the data: every window once, over all ranks (windows as in source.h).
    const int64_t epoch_steps =
        std::max<int64_t>(1, o.shards * ((o.shard_tokens - 1) / o.seq_len) / o.global_batch);
    // 2 GiB read by this rank gives a steady page-cache figure; rereading cached windows costs
    // the same as reading them once. Cold reads stop after one pass, as a second finds it cached.
    const int64_t steps =
        o.steps ? o.steps : std::max<int64_t>(1, (int64_t{2} << 30) / (4 * step_tokens));
    const int64_t cold_steps = std::min(steps, epoch_steps);
    fmt::print(
        "{} shards x {} tokens ({}) in {}; seq_len {}, global batch {} over {} ranks: "
        "rank 0 reads {} rows ({} tokens) per step; {} steps, prefetch {}, vocab {}\n",
        o.shards, with_commas(o.shard_tokens), human_bytes(4.0 * o.shards * o.shard_tokens), dir,
        o.seq_len, o.global_batch, o.world_size, rows, with_commas(step_tokens), steps, o.prefetch,
        with_commas(o.vocab_size));

    auto start = Clock::now();
    for (int64_t i = 0; i < o.shards; ++i) {
      written.push_back(fmt::format("{}/bench-shard-{:05d}.h5", dir, i));
      write_shard(written.back(), i, o);
    }
    fmt::print("wrote the shards in {:.2f} s\n", seconds_since(start));

    LoaderConfig config;
    config.sources.push_back({"synthetic", dir + "/bench-shard-*.h5", 1.0});
    config.seq_len = o.seq_len;
    config.global_batch = o.global_batch;
    config.world_size = static_cast<int>(o.world_size);
    config.vocab_size = o.vocab_size;
    config.prefetch_batches = o.prefetch;

    // 1. Page cache, the consumer taking batches as fast as they come.
    read_through(written);
    config.seed = 1;
    const Pass cached = run_loader(config, steps, 0);
    const double batch_s = cached.run_s / double(steps);
    fmt::print(
        "page cache: {}: {} steps in {:.2f} s, {:.3f} ms per batch; loader built in {:.1f} "
        "ms, first batch after {:.2f} ms\n",
        rate(double(steps * step_tokens) / cached.run_s), steps, cached.run_s, batch_s * 1e3,
        cached.open_s * 1e3, cached.first_wait_s * 1e3);

    // 2. Cold reads, from a different seed so the order shares nothing with the pass above.
    double still_cached = 0;
    for (const std::string& path : written) {
      evict(path);
      still_cached += cached_fraction(path) / double(written.size());
    }
    fmt::print(
        "evicted the shards with posix_fadvise(DONTNEED), best effort: {:.1f}% of their "
        "pages still cached{}\n",
        still_cached * 100,
        still_cached > 0.05 ? " (so the figure below is partly page cache)" : "");
    config.seed = 2;
    const Pass cold = run_loader(config, cold_steps, 0);
    fmt::print(
        "cold reads: {}: {} steps in {:.2f} s; loader built in {:.1f} ms, first batch "
        "after {:.2f} ms\n",
        rate(double(cold_steps * step_tokens) / cold.run_s), cold_steps, cold.run_s,
        cold.open_s * 1e3, cold.first_wait_s * 1e3);

    // 3. A consumer slower than the loader should find every batch but the first already waiting.
    read_through(written);
    const double step_s = o.step_ms > 0 ? o.step_ms / 1e3 : 2 * batch_s;
    config.seed = 3;
    const Pass slow = run_loader(config, kConsumerSteps, step_s);
    fmt::print(
        "consumer {:.1f}x slower than loader ({:.3f} ms per step): waited {:.3f} s over {} "
        "steps (max {:.2f} ms); first batch after {:.2f} ms\n",
        step_s / batch_s, step_s * 1e3, slow.later_wait_s, kConsumerSteps - 1,
        slow.max_later_wait_s * 1e3, slow.first_wait_s * 1e3);
  } catch (const std::exception& e) {
    fmt::print(stderr, "qwen3-bench-loader: error: {}\n", e.what());
    status = 1;
  }
  if (!keep) {
    std::error_code ignored;
    for (const std::string& path : written)
      fs::remove(path, ignored);
    if (!made_dir.empty()) fs::remove(made_dir, ignored);
  } else if (!written.empty()) {
    fmt::print("kept the shards in {}\n", fs::path(written.front()).parent_path().string());
  }
  return status;
}
