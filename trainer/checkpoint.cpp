#include "trainer/checkpoint.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/model/hf_checkpoint.h"
#include "core/util/error.h"
#include "core/util/file_io.h"
#include "core/util/options.h"
#include "trainer/optimizer_state.h"

namespace qwen3 {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestFormat = "qwen3-train checkpoint v1";
constexpr const char* kManifestFile = "manifest.yaml";
constexpr const char* kStateFile = "trainer_state.yaml";
constexpr const char* kStepPrefix = "step-";
constexpr const char* kTmpPrefix = ".tmp-step-";
constexpr const char* kOldPrefix = ".old-step-";
// Checkpoints that failed verification are moved aside under this prefix, for people to inspect:
// out of the list that resumes and retention look at, and never deleted by the trainer.
constexpr const char* kRejectedPrefix = "rejected-step-";

// Step number of a "step-NNNNNNNN" directory name; -1 for anything else.
int64_t step_of(const std::string& name) {
  const size_t n = std::string(kStepPrefix).size();
  if (name.size() <= n || name.compare(0, n, kStepPrefix) != 0) return -1;
  int64_t step = 0;
  for (size_t i = n; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

// Checkpoint directories by step, newest first.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    const int64_t step = step_of(name);
    if (step >= 0 && entry.is_directory()) out.emplace_back(step, entry.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::string manifest_text(int64_t global_step, const std::vector<std::string>& files,
                          const std::vector<FileChecksum>& sums) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "format" << YAML::Value << kManifestFormat;
  e << YAML::Key << "global_step" << YAML::Value << global_step;
  e << YAML::Key << "files" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < files.size(); ++i)
    e << YAML::Flow << YAML::BeginMap << YAML::Key << "path" << YAML::Value << files[i] << YAML::Key
      << "bytes" << YAML::Value << sums[i].bytes << YAML::Key << "crc32" << YAML::Value
      << sums[i].crc32 << YAML::EndMap;
  e << YAML::EndSeq << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

struct ManifestEntry {
  std::string path;
  uint64_t bytes = 0;
  uint32_t crc32 = 0;
};

std::vector<ManifestEntry> read_manifest(const std::string& dir) {
  const std::string path = dir + "/" + kManifestFile;
  QWEN3_CHECK(fs::exists(path),
              "checkpoint '{}' has no {}: its write did not finish (the manifest is written last)",
              dir, kManifestFile);
  const YAML::Node root = load_yaml_file(path);
  QWEN3_CHECK(root.IsMap() && root["format"] && root["format"].IsScalar() &&
                  root["format"].Scalar() == kManifestFormat,
              "'{}' is not a manifest in the format '{}'", path, kManifestFormat);
  const YAML::Node files = root["files"];
  QWEN3_CHECK(files && files.IsSequence(), "'{}': 'files' must be a list", path);
  std::vector<ManifestEntry> out;
  try {
    for (const auto& f : files) {
      ManifestEntry m{f["path"].as<std::string>(), f["bytes"].as<uint64_t>(),
                      f["crc32"].as<uint32_t>()};
      QWEN3_CHECK(!m.path.empty() && m.path[0] != '/' && m.path.find("..") == std::string::npos,
                  "'{}': file path '{}' leaves the checkpoint directory", path, m.path);
      out.push_back(std::move(m));
    }
  } catch (const YAML::Exception& e) {
    throw_error(fmt::format("'{}': unreadable file entry: {}", path, e.what()));
  }
  return out;
}

// Removes checkpoints beyond the newest `keep_last` up to `saved_step` (the one just written),
// except the last one of each stage. Directories of later steps, which can only be leftovers the
// resume did not trust, are not counted: they must not push out good checkpoints.
void prune(const std::string& root, int64_t keep_last, int64_t saved_step) {
  std::vector<std::pair<int64_t, std::string>> all;
  for (auto& entry : list_checkpoints(root))
    if (entry.first <= saved_step) all.push_back(std::move(entry));
  for (size_t i = static_cast<size_t>(keep_last); i < all.size(); ++i) {
    const std::string& dir = all[i].second;
    bool stage_end = false;
    try {
      stage_end = read_trainer_state(dir).stage_complete;
    } catch (const Error&) {
      stage_end = false;  // unreadable: not worth keeping
    }
    if (!stage_end) fs::remove_all(dir);
  }
}

}  // namespace

// --- TrainerState ---------------------------------------------------------------------------

std::string TrainerState::to_text() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "format" << YAML::Value << 1;
  e << YAML::Key << "run_name" << YAML::Value << run_name;
  e << YAML::Key << "stage" << YAML::Value << stage;
  e << YAML::Key << "stage_name" << YAML::Value << stage_name;
  e << YAML::Key << "stage_step" << YAML::Value << stage_step;
  e << YAML::Key << "stage_steps" << YAML::Value << stage_steps;
  e << YAML::Key << "stage_complete" << YAML::Value << stage_complete;
  e << YAML::Key << "global_step" << YAML::Value << global_step;
  e << YAML::Key << "tokens_seen" << YAML::Value << tokens_seen;
  e << YAML::Key << "stage_tokens" << YAML::Value << stage_tokens;
  e << YAML::Key << "nonfinite_in_a_row" << YAML::Value << nonfinite_in_a_row;
  e << YAML::Key << "skipped_steps" << YAML::Value << skipped_steps;
  e << YAML::Key << "seed" << YAML::Value << seed;
  e << YAML::Key << "data_seed" << YAML::Value << data_seed;
  e << YAML::Key << "rope_theta" << YAML::Value << fmt::format("{}", rope_theta);
  e << YAML::Key << "last_lr" << YAML::Value << fmt::format("{}", last_lr);
  e << YAML::Key << "world_size" << YAML::Value << world_size;
  e << YAML::Key << "zero_stage" << YAML::Value << zero_stage;
  e << YAML::Key << "schedule" << YAML::Value << schedule;
  e << YAML::Key << "loader" << YAML::Value << YAML::Literal << loader;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

TrainerState TrainerState::from_text(const std::string& text, const std::string& origin) {
  const YAML::Node root = load_yaml_text(text, origin);
  QWEN3_CHECK(root.IsMap(), "'{}' is not a trainer state (expected a mapping)", origin);
  auto get = [&](const char* key) {
    const YAML::Node n = root[key];
    QWEN3_CHECK(n.IsDefined() && !n.IsNull(), "'{}': key '{}' is missing", origin, key);
    return n;
  };
  TrainerState s;
  try {
    QWEN3_CHECK(get("format").as<int>() == 1, "'{}': unknown trainer state format {}", origin,
                get("format").as<std::string>());
    s.run_name = get("run_name").as<std::string>();
    s.stage = get("stage").as<int64_t>();
    s.stage_name = get("stage_name").as<std::string>();
    s.stage_step = get("stage_step").as<int64_t>();
    s.stage_steps = get("stage_steps").as<int64_t>();
    s.stage_complete = get("stage_complete").as<bool>();
    s.global_step = get("global_step").as<int64_t>();
    s.tokens_seen = get("tokens_seen").as<int64_t>();
    s.stage_tokens = get("stage_tokens").as<int64_t>();
    s.nonfinite_in_a_row = get("nonfinite_in_a_row").as<int64_t>();
    s.skipped_steps = get("skipped_steps").as<int64_t>();
    s.seed = get("seed").as<uint64_t>();
    s.data_seed = get("data_seed").as<uint64_t>();
    s.rope_theta = get("rope_theta").as<double>();
    s.last_lr = get("last_lr").as<double>();
    s.world_size = get("world_size").as<int>();
    s.zero_stage = get("zero_stage").as<int>();
    s.schedule = get("schedule").as<std::string>();
    const YAML::Node loader = root["loader"];
    s.loader = loader.IsDefined() && !loader.IsNull() ? loader.as<std::string>() : "";
  } catch (const YAML::Exception& e) {
    throw_error(fmt::format("'{}': a value has the wrong type: {}", origin, e.what()));
  }
  return s;
}

// --- reading checkpoints ----------------------------------------------------------------------

void verify_checkpoint(const std::string& dir) {
  const std::vector<ManifestEntry> files = read_manifest(dir);
  bool has_model = false, has_state = false;
  for (const ManifestEntry& m : files) {
    has_model |= m.path == "model.safetensors";
    has_state |= m.path == kStateFile;
    const std::string path = dir + "/" + m.path;
    QWEN3_CHECK(fs::exists(path), "checkpoint '{}': file '{}' listed in the manifest is missing",
                dir, m.path);
    const FileChecksum sum = checksum_file(path);
    QWEN3_CHECK(sum.bytes == m.bytes,
                "checkpoint '{}': '{}' has {} bytes, the manifest says {} (truncated?)", dir,
                m.path, sum.bytes, m.bytes);
    QWEN3_CHECK(sum.crc32 == m.crc32,
                "checkpoint '{}': '{}' has CRC-32 {:08x}, the manifest says {:08x} (corrupted)",
                dir, m.path, sum.crc32, m.crc32);
  }
  QWEN3_CHECK(has_model && has_state,
              "checkpoint '{}': the manifest lists no model.safetensors or no {}", dir, kStateFile);
}

bool is_trainer_checkpoint(const std::string& dir) {
  return fs::exists(dir + "/" + kManifestFile) && fs::exists(dir + "/" + kStateFile);
}

TrainerState read_trainer_state(const std::string& dir) {
  const std::string path = dir + "/" + kStateFile;
  return TrainerState::from_text(read_file(path), path);
}

void load_optimizer_state(const std::string& dir, ZeroAdamW& optimizer, const ParamLayout& layout) {
  std::vector<std::string> shards;
  for (const ManifestEntry& m : read_manifest(dir))
    if (m.path.rfind("optimizer/", 0) == 0) shards.push_back(dir + "/" + m.path);
  QWEN3_CHECK(!shards.empty(), "checkpoint '{}' holds no optimizer state", dir);
  read_optimizer_shards(shards, optimizer, layout);
}

// --- CheckpointStore --------------------------------------------------------------------------

CheckpointStore::CheckpointStore(std::string output_dir, Communicator& host_comm)
    : output_dir_(std::move(output_dir)), comm_(host_comm) {}

std::string CheckpointStore::dir_for_step(int64_t global_step) const {
  return fmt::format("{}/{}{:08d}", checkpoints_dir(), kStepPrefix, global_step);
}

std::string CheckpointStore::save(const Qwen3Model& model, const ZeroAdamW& optimizer,
                                  const TrainerState& state, int64_t keep_last) {
  const int rank = comm_.rank(), world = comm_.size();
  const std::string root = checkpoints_dir();
  const std::string final_dir = dir_for_step(state.global_step);
  const std::string tmp_dir = fmt::format("{}/{}{:08d}", root, kTmpPrefix, state.global_step);
  if (rank == 0) {
    fs::remove_all(tmp_dir);  // a leftover of an interrupted write of this same step
    fs::create_directories(tmp_dir + "/optimizer");
  }
  comm_.barrier();

  // Every file and who wrote it: rank 0 the model and state, each rank its optimizer shard.
  std::vector<std::string> mine;
  if (rank == 0) {
    save_hf_model(model, tmp_dir, model.backend().storage_dtype());
    write_file_atomic(tmp_dir + "/" + kStateFile, state.to_text());
    mine = {"config.json", "model.safetensors", kStateFile};
  }
  const std::string shard = optimizer_shard_file(optimizer, rank, world);
  if (!shard.empty()) {
    write_optimizer_shard(tmp_dir + "/" + shard, optimizer, model.layout());
    mine.push_back(shard);
  }
  // Each rank checksums its shard while it is in the page cache; the sums reach rank 0 through
  // one all-reduce of a [world, 2] table in which each rank fills its own row.
  std::vector<int64_t> table(static_cast<size_t>(2 * world), 0);
  if (!shard.empty()) {
    const FileChecksum sum = checksum_file(tmp_dir + "/" + shard);
    table[2 * rank] = static_cast<int64_t>(sum.bytes) + 1;  // 0 means "wrote nothing"
    table[2 * rank + 1] = sum.crc32;
  }
  comm_.all_reduce(table.data(), table.data(), table.size(), DType::I64, ReduceOp::Sum);

  if (rank == 0) {
    if (const char* kill_at = std::getenv(kKillDuringCheckpointEnv))
      if (std::to_string(state.global_step) == kill_at) ::kill(::getpid(), SIGKILL);
    std::vector<std::string> files;
    std::vector<FileChecksum> sums;
    for (const std::string& f :
         {std::string("config.json"), std::string("model.safetensors"), std::string(kStateFile)}) {
      files.push_back(f);
      sums.push_back(checksum_file(tmp_dir + "/" + f));
    }
    for (int r = 0; r < world; ++r) {
      if (table[2 * r] == 0) continue;
      files.push_back(optimizer_shard_file(optimizer, r, world));
      sums.push_back(FileChecksum{static_cast<uint64_t>(table[2 * r] - 1),
                                  static_cast<uint32_t>(table[2 * r + 1])});
    }
    write_file_atomic(tmp_dir + "/" + kManifestFile, manifest_text(state.global_step, files, sums));
    fsync_path(tmp_dir + "/optimizer");
    fsync_path(tmp_dir);
    // The same step may exist from an earlier attempt that was later found unverifiable; move it
    // aside rather than deleting it before the new one is in place.
    std::string displaced;
    if (fs::exists(final_dir)) {
      displaced = fmt::format("{}/{}{:08d}", root, kOldPrefix, state.global_step);
      fs::remove_all(displaced);
      fs::rename(final_dir, displaced);
    }
    fs::rename(tmp_dir, final_dir);
    fsync_path(root);
    if (!displaced.empty()) fs::remove_all(displaced);
    // `latest` moves last, by renaming a fresh link over it.
    const std::string link_tmp = root + "/latest.tmp";
    fs::remove(link_tmp);
    fs::create_directory_symlink(fs::path(final_dir).filename(), link_tmp);
    fs::rename(link_tmp, root + "/latest");
    fsync_path(root);
    prune(root, keep_last, state.global_step);
  }
  comm_.barrier();
  return final_dir;
}

std::string CheckpointStore::find_latest_valid(std::vector<std::string>* rejected) {
  int64_t chosen = -1;
  if (comm_.rank() == 0) {
    const std::string root = checkpoints_dir();
    std::error_code ec;
    std::vector<fs::path> leftovers;
    if (fs::is_directory(root, ec))
      for (const auto& entry : fs::directory_iterator(root)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(kTmpPrefix, 0) == 0 || name.rfind(kOldPrefix, 0) == 0 ||
            name == "latest.tmp")
          leftovers.push_back(entry.path());
      }
    for (const fs::path& path : leftovers) {
      const std::string name = path.filename().string();
      // A write that got as far as its manifest but not its rename is complete: promote it.
      if (name.rfind(kTmpPrefix, 0) == 0) {
        const std::string final_dir =
            (fs::path(root) / (kStepPrefix + name.substr(std::string(kTmpPrefix).size()))).string();
        bool complete = false;
        try {
          verify_checkpoint(path.string());
          complete = !fs::exists(final_dir);
        } catch (const std::exception&) {
          complete = false;
        }
        if (complete) {
          fs::rename(path, final_dir);
          fsync_path(root);
          if (rejected) rejected->push_back(path.string() + ": complete but not renamed; promoted");
          continue;
        }
      }
      if (rejected) rejected->push_back(path.string() + ": an interrupted write; removed");
      fs::remove_all(path);
    }
    for (const auto& [step, dir] : list_checkpoints(root)) {
      try {
        verify_checkpoint(dir);
        chosen = step;
        break;
      } catch (const std::exception& e) {
        std::string aside = fmt::format("{}/{}{:08d}", root, kRejectedPrefix, step);
        for (int n = 1; fs::exists(aside); ++n)
          aside = fmt::format("{}/{}{:08d}.{}", root, kRejectedPrefix, step, n);
        fs::rename(dir, aside);
        if (rejected)
          rejected->push_back(
              fmt::format("{} (moved aside to {})", without_rank_prefix(e.what()), aside));
      }
    }
  }
  comm_.broadcast(&chosen, 1, DType::I64, 0);
  return chosen < 0 ? "" : dir_for_step(chosen);
}

}  // namespace qwen3
