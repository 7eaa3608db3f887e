#include "dataloader/loader.h"

#include <yaml-cpp/yaml.h>

#include "core/util/options.h"
#include "core/util/rng.h"
#include "dataloader/permutation.h"

namespace qwen3 {

namespace {

// Version of LoaderState's text form, checked when a state is read back.
constexpr int64_t kLoaderStateVersion = 1;

// FNV-1a: the permutation stream of a source follows its name, not its position in the list, so
// adding a source to a mixture does not reshuffle the others.
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

void check_batch_geometry(int64_t seq_len, int64_t global_batch, int rank, int world_size,
                          const char* what) {
  QWEN3_CHECK(seq_len >= 1, "{}: seq_len must be positive, got {}", what, seq_len);
  QWEN3_CHECK(world_size >= 1 && rank >= 0 && rank < world_size,
              "{}: rank {} is not in [0, world size {})", what, rank, world_size);
  QWEN3_CHECK(global_batch >= 1, "{}: the global batch must be at least one sample, got {}", what,
              global_batch);
  QWEN3_CHECK(global_batch % world_size == 0,
              "{}: the global batch of {} samples does not split evenly over {} ranks; make it a "
              "multiple of {}",
              what, global_batch, world_size, world_size);
}

std::string LoaderState::to_text() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "loader_state_version" << YAML::Value << kLoaderStateVersion;
  out << YAML::Key << "seed" << YAML::Value << seed;
  out << YAML::Key << "seq_len" << YAML::Value << seq_len;
  out << YAML::Key << "samples_consumed" << YAML::Value << samples_consumed;
  out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const SourceState& s : sources) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << s.name;
    out << YAML::Key << "num_samples" << YAML::Value << s.num_samples;
    out << YAML::Key << "weight" << YAML::Value << s.weight;
    out << YAML::Key << "drawn" << YAML::Value << s.drawn;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

LoaderState LoaderState::from_text(const std::string& text, const std::string& origin) {
  const YAML::Node root = load_yaml_text(text, origin);
  const SourceLocation top = location_of(root, origin);
  if (!root.IsMap()) throw_config_error(top, "(top level)", "a loader state must be a mapping");
  auto field = [&](const YAML::Node& map, const char* key) {
    const YAML::Node value = map[key];
    if (!value)
      throw_config_error(location_of(map, origin), key, "is missing from the loader state");
    return parse_int(value, key, location_of(value, origin));
  };
  const int64_t version = field(root, "loader_state_version");
  if (version != kLoaderStateVersion)
    throw_config_error(
        top, "loader_state_version",
        fmt::format("is {}, but this build reads version {}", version, kLoaderStateVersion));
  LoaderState state;
  if (!root["seed"]) throw_config_error(top, "seed", "is missing from the loader state");
  try {
    state.seed = root["seed"].as<uint64_t>();
  } catch (const YAML::Exception&) {
    throw_config_error(location_of(root["seed"], origin), "seed", "must be an unsigned integer");
  }
  state.seq_len = field(root, "seq_len");
  state.samples_consumed = field(root, "samples_consumed");
  const YAML::Node sources = root["sources"];
  if (!sources || !sources.IsSequence())
    throw_config_error(top, "sources", "must be a list in the loader state");
  int64_t drawn_total = 0;
  for (const YAML::Node& s : sources) {
    SourceState entry;
    if (!s.IsMap() || !s["name"])
      throw_config_error(location_of(s, origin), "sources", "entries need a name");
    entry.name = parse_string(s["name"], "name", location_of(s["name"], origin));
    entry.num_samples = field(s, "num_samples");
    entry.weight = field(s, "weight");
    entry.drawn = field(s, "drawn");
    if (entry.drawn < 0 || entry.num_samples < 1)
      throw_config_error(location_of(s, origin), "sources", "has negative or empty counts");
    drawn_total += entry.drawn;
    state.sources.push_back(std::move(entry));
  }
  if (drawn_total != state.samples_consumed)
    throw_config_error(top, "samples_consumed",
                       fmt::format("is {}, but the sources' drawn counts add up to {}; the state "
                                   "is damaged",
                                   state.samples_consumed, drawn_total));
  return state;
}

bool LoaderState::operator==(const LoaderState& o) const {
  if (seed != o.seed || seq_len != o.seq_len || samples_consumed != o.samples_consumed ||
      sources.size() != o.sources.size())
    return false;
  for (size_t i = 0; i < sources.size(); ++i)
    if (sources[i].name != o.sources[i].name ||
        sources[i].num_samples != o.sources[i].num_samples ||
        sources[i].weight != o.sources[i].weight || sources[i].drawn != o.sources[i].drawn)
      return false;
  return true;
}

SamplePlanner::SamplePlanner(std::vector<std::string> source_names,
                             std::vector<int64_t> source_samples,
                             const std::vector<double>& weights, uint64_t seed, int64_t seq_len)
    : mixture_(weights) {
  QWEN3_CHECK(source_names.size() == source_samples.size() && weights.size() == source_names.size(),
              "sample planner given {} names, {} sizes and {} weights", source_names.size(),
              source_samples.size(), weights.size());
  state_.seed = seed;
  state_.seq_len = seq_len;
  for (size_t s = 0; s < source_names.size(); ++s) {
    QWEN3_CHECK(source_samples[s] >= 1, "data source '{}' has no windows", source_names[s]);
    streams_.push_back(name_hash(source_names[s]));
    state_.sources.push_back(
        {source_names[s], source_samples[s], static_cast<int64_t>(mixture_.fixed_weight(s)), 0});
  }
}

std::vector<SampleRef> SamplePlanner::plan(int64_t count) {
  std::vector<int64_t> drawn(state_.sources.size());
  for (size_t s = 0; s < drawn.size(); ++s)
    drawn[s] = state_.sources[s].drawn;
  std::vector<SampleRef> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const size_t s = mixture_.next_source(drawn);
    const int64_t n = state_.sources[s].num_samples;
    const int64_t k = drawn[s]++;
    const int64_t epoch = k / n;
    // Each epoch of each source is its own permutation, so no window repeats within a pass.
    const IndexPermutation order(static_cast<uint64_t>(n), state_.seed,
                                 random_bits(streams_[s], static_cast<uint64_t>(epoch), 0));
    out.push_back({static_cast<int32_t>(s),
                   static_cast<int64_t>(order(static_cast<uint64_t>(k % n))), epoch});
  }
  for (size_t s = 0; s < drawn.size(); ++s)
    state_.sources[s].drawn = drawn[s];
  state_.samples_consumed += count;
  return out;
}

void SamplePlanner::restore(const LoaderState& saved, const std::string& origin) {
  auto mismatch = [&](const std::string& what) {
    throw_error(fmt::format("cannot resume the data order from {}: {}", origin, what));
  };
  if (saved.seed != state_.seed)
    mismatch(fmt::format("it was saved with data seed {}, but this run's seed is {}", saved.seed,
                         state_.seed));
  if (saved.seq_len != state_.seq_len)
    mismatch(fmt::format("it was saved with seq_len {}, but this run's seq_len is {}",
                         saved.seq_len, state_.seq_len));
  if (saved.sources.size() != state_.sources.size())
    mismatch(fmt::format("it has {} data sources, this run has {}", saved.sources.size(),
                         state_.sources.size()));
  for (size_t s = 0; s < saved.sources.size(); ++s) {
    const auto &was = saved.sources[s], &now = state_.sources[s];
    if (was.name != now.name)
      mismatch(fmt::format("source {} was '{}', now '{}'", s, was.name, now.name));
    if (was.num_samples != now.num_samples)
      mismatch(fmt::format("source '{}' had {} windows, now {}: its shards changed", was.name,
                           was.num_samples, now.num_samples));
    if (was.weight != now.weight)
      mismatch(
          fmt::format("source '{}' had weight {}, now {}; a different mixture is a new stage "
                      "with its own loader",
                      was.name, double(was.weight) / 1e6, double(now.weight) / 1e6));
  }
  state_ = saved;
}

void read_window_into_row(Source& source, int64_t window, Batch& batch, int64_t row) {
  const auto offset = static_cast<size_t>(row * batch.seq);
  source.read_window(window, {batch.tokens.data() + offset, batch.targets.data() + offset,
                              batch.positions.data() + offset, batch.doc_ids.data() + offset});
}

TrainLoader::TrainLoader(const LoaderConfig& config, const LoaderState* resume,
                         const std::string& resume_origin)
    : config_(config) {
  check_batch_geometry(config_.seq_len, config_.global_batch, config_.rank, config_.world_size,
                       "training data");
  QWEN3_CHECK(!config_.sources.empty(), "training data: no sources are configured");
  std::vector<std::string> names;
  std::vector<int64_t> sizes;
  std::vector<double> weights;
  for (const SourceSpec& spec : config_.sources) {
    for (const std::string& name : names)
      QWEN3_CHECK(name != spec.name, "training data: two sources are named '{}'", name);
    sources_.emplace_back(spec.name, spec.path, config_.seq_len, config_.vocab_size);
    const Source& s = sources_.back();
    summaries_.push_back({s.name(), s.num_samples(), s.num_tokens(), s.num_documents(),
                          static_cast<int64_t>(s.shards().size())});
    names.push_back(spec.name);
    sizes.push_back(sources_.back().num_samples());
    weights.push_back(spec.weight);
  }
  for (const Source& source : sources_)
    check_same_tokenizer(source.shards().front().info(), sources_.front().shards().front().info(),
                         "training data (source '" + source.name() + "')");
  planner_ = std::make_unique<SamplePlanner>(names, sizes, weights, config_.seed, config_.seq_len);
  if (resume) planner_->restore(*resume, resume_origin);
  consumed_state_ = planner_->state();
  next_step_ = consumed_state_.samples_consumed / config_.global_batch;
  prefetcher_ = std::make_unique<Prefetcher<Prefetched>>(
      [this](Prefetched& out) { return produce(out); }, config_.prefetch_batches);
}

TrainLoader::~TrainLoader() {
  prefetcher_.reset();  // joins the background thread before the sources go
}

bool TrainLoader::produce(Prefetched& out) {
  const int64_t rows = rows_per_rank(), seq = config_.seq_len;
  const std::vector<SampleRef> global = planner_->plan(config_.global_batch);
  LoaderBatch& b = out.batch;
  b.step = next_step_++;
  b.real_rows = rows;
  b.batch.batch = rows;
  b.batch.seq = seq;
  const auto n = static_cast<size_t>(rows * seq);
  b.batch.tokens.resize(n);
  b.batch.targets.resize(n);
  b.batch.positions.resize(n);
  b.batch.doc_ids.resize(n);
  b.samples.assign(global.begin() + config_.rank * rows,
                   global.begin() + (config_.rank + 1) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    const SampleRef& ref = b.samples[static_cast<size_t>(r)];
    read_window_into_row(sources_[static_cast<size_t>(ref.source)], ref.window, b.batch, r);
  }
  out.state_after = planner_->state();
  return true;
}

LoaderBatch TrainLoader::next() {
  std::optional<Prefetched> item = prefetcher_->next();
  QWEN3_CHECK(item.has_value(), "training data loader stopped unexpectedly");
  consumed_state_ = std::move(item->state_after);
  return std::move(item->batch);
}

}  // namespace qwen3
