// The loaders: windows and their document ids and positions against a direct reading of the token
// stream; one global order whatever the rank count; exact resume; exact mixing proportions; the
// eval loader's fixed order.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <map>
#include <numeric>
#include <set>

#include "core/util/error.h"
#include "dataloader/eval_loader.h"
#include "dataloader/loader.h"
#include "dataloader/mixture.h"
#include "dataloader/permutation.h"
#include "shard_test_util.h"

namespace qwen3 {
namespace {

using test::Documents;

TEST(Permutation, IsABijectionForManySizes) {
  for (uint64_t n : {1u, 2u, 3u, 5u, 16u, 17u, 100u, 1000u, 4097u, 65536u}) {
    const IndexPermutation p(n, 7, 3);
    std::vector<bool> seen(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t v = p(i);
      ASSERT_LT(v, n);
      ASSERT_FALSE(seen[v]) << "n=" << n << " value " << v << " twice";
      seen[v] = true;
    }
  }
}

TEST(Permutation, DependsOnSeedAndStreamOnly) {
  const IndexPermutation a(1000, 1, 0), b(1000, 1, 0), c(1000, 2, 0), d(1000, 1, 1);
  int same_c = 0, same_d = 0, fixed_points = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(a(i), b(i));
    same_c += a(i) == c(i);
    same_d += a(i) == d(i);
    fixed_points += a(i) == i;
  }
  // A random permutation agrees with another in about 1 place of 1000, and has about 1 fixed
  // point; 20 would mean the shuffle is not shuffling.
  EXPECT_LT(same_c, 20);
  EXPECT_LT(same_d, 20);
  EXPECT_LT(fixed_points, 20);
}

TEST(Mixture, EveryPrefixIsWithinOneSampleOfItsShare) {
  const std::vector<std::vector<double>> cases = {{0.7, 0.3},
                                                  {1, 1, 1},
                                                  {0.5, 0.25, 0.125, 0.125},
                                                  {3, 0.001},
                                                  {0.9, 0.05, 0.03, 0.02},
                                                  {1.234567, 2.5, 0.333333, 7}};
  for (const auto& weights : cases) {
    const MixtureSchedule mixture(weights);
    std::vector<int64_t> drawn(weights.size(), 0);
    for (int64_t n = 1; n <= 20000; ++n) {
      ++drawn[mixture.next_source(drawn)];
      for (size_t s = 0; s < weights.size(); ++s)
        ASSERT_LT(std::abs(static_cast<double>(drawn[s]) -
                           static_cast<double>(n) * mixture.proportion(s)),
                  1.0)
            << "source " << s << " after " << n << " samples";
    }
  }
  const MixtureSchedule seventy_thirty({0.7, 0.3});
  std::vector<int64_t> drawn = {0, 0};
  for (int n = 0; n < 1000; ++n)
    ++drawn[seventy_thirty.next_source(drawn)];
  EXPECT_EQ(drawn, (std::vector<int64_t>{700, 300}));
  EXPECT_THROW(MixtureSchedule({1.0, 0.0}), Error);
  EXPECT_THROW(MixtureSchedule({1.0, -2.0}), Error);
}

// The token stream a source reads: its shards' documents back to back, with offsets per shard.
struct Corpus {
  std::vector<Documents> shards;
};

Corpus write_corpus(const std::string& dir, const std::string& prefix, int shards, int docs,
                    int min_len, int max_len, uint64_t seed) {
  Corpus c;
  for (int s = 0; s < shards; ++s) {
    c.shards.push_back(test::random_documents(docs, min_len, max_len, 1024, 1023, seed * 100 + s));
    test::write_shard(dir + "/" + prefix + "-" + std::to_string(s) + ".h5", c.shards.back());
  }
  return c;
}

// Window `w` of shard `s` computed directly from the documents: what read_window must produce.
struct ExpectedWindow {
  std::vector<int32_t> inputs, targets, positions, doc_ids;
};
ExpectedWindow expected_window(const Documents& docs, int64_t start, int64_t seq) {
  std::vector<int32_t> tokens, doc_of, pos_in_doc;
  for (size_t d = 0; d < docs.size(); ++d)
    for (size_t t = 0; t < docs[d].size(); ++t) {
      tokens.push_back(static_cast<int32_t>(docs[d][t]));
      doc_of.push_back(static_cast<int32_t>(d));
      pos_in_doc.push_back(static_cast<int32_t>(t));
    }
  ExpectedWindow e;
  for (int64_t t = 0; t < seq; ++t) {
    const auto i = static_cast<size_t>(start + t);
    e.inputs.push_back(tokens[i]);
    e.targets.push_back(tokens[i + 1]);
    e.doc_ids.push_back(doc_of[i] - doc_of[static_cast<size_t>(start)]);
    // Positions restart at a document start, and at the window start for a document already
    // under way.
    e.positions.push_back(doc_of[i] == doc_of[static_cast<size_t>(start)] ? static_cast<int32_t>(t)
                                                                          : pos_in_doc[i]);
  }
  return e;
}

TEST(Source, WindowsMatchADirectReadingOfTheDocuments) {
  const std::string dir = test::fresh_dir();
  const Corpus c = write_corpus(dir, "web", 3, 30, 1, 40, 1);
  const int64_t seq = 16;
  Source source("web", dir + "/web-*.h5", seq, 1024);
  int64_t expected_windows = 0;
  for (const Documents& docs : c.shards) {
    int64_t n = 0;
    for (const auto& d : docs)
      n += static_cast<int64_t>(d.size());
    expected_windows += (n - 1) / seq;
  }
  ASSERT_EQ(source.num_samples(), expected_windows);
  std::vector<int32_t> in(seq), tg(seq), pos(seq), ids(seq);
  int64_t window = 0;
  for (size_t s = 0; s < c.shards.size(); ++s) {
    const int64_t first_window = window;
    for (; window < source.num_samples() && source.locate(window).first == s; ++window) {
      source.read_window(window, {in.data(), tg.data(), pos.data(), ids.data()});
      const ExpectedWindow e = expected_window(c.shards[s], (window - first_window) * seq, seq);
      ASSERT_EQ(in, e.inputs) << "window " << window;
      ASSERT_EQ(tg, e.targets) << "window " << window;
      ASSERT_EQ(pos, e.positions) << "window " << window;
      ASSERT_EQ(ids, e.doc_ids) << "window " << window;
    }
  }
  EXPECT_EQ(window, source.num_samples());
}

TEST(Source, ManyShardsReadCorrectlyWithABoundedNumberOpen) {
  // More shards than Source keeps open, read in a shuffled order so files are closed and
  // reopened many times. The limit follows the open-file limit: lower it for the test.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 512;  // -> 64 open shards per source
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  struct RestoreLimit {
    rlimit limit;
    ~RestoreLimit() { setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{saved};
  const size_t limit = 64;
  const std::string dir = test::fresh_dir();
  const int shards = 70;
  const Corpus c = write_corpus(dir, "many", shards, 3, 10, 20, 13);
  const int64_t seq = 8;
  Source source("many", dir + "/many-*.h5", seq, 1024);
  // Paths sort as many-0, many-1, many-10, ...: map each shard index back to its corpus entry.
  std::vector<size_t> corpus_of;
  for (const ShardReader& shard : source.shards()) {
    const std::string& path = shard.info().path;
    corpus_of.push_back(std::stoul(path.substr(path.rfind('-') + 1)));
  }
  const IndexPermutation order(static_cast<uint64_t>(source.num_samples()), 1, 2);
  std::vector<int32_t> in(seq), tg(seq), pos(seq), ids(seq);
  for (int64_t i = 0; i < source.num_samples(); ++i) {
    const auto window = static_cast<int64_t>(order(static_cast<uint64_t>(i)));
    const auto [shard, start] = source.locate(window);
    source.read_window(window, {in.data(), tg.data(), pos.data(), ids.data()});
    const ExpectedWindow e = expected_window(c.shards[corpus_of[shard]], start, seq);
    ASSERT_EQ(in, e.inputs) << "window " << window;
    ASSERT_EQ(ids, e.doc_ids) << "window " << window;
    ASSERT_EQ(pos, e.positions) << "window " << window;
    int64_t open = 0;
    for (const ShardReader& s : source.shards())
      open += s.is_open();
    ASSERT_LE(open, static_cast<int64_t>(limit));
  }
}

LoaderConfig one_source_config(const std::string& dir, int64_t global_batch, int rank, int world) {
  LoaderConfig config;
  config.sources = {{"web", dir + "/web-*.h5", 1.0}};
  config.seq_len = 8;
  config.global_batch = global_batch;
  config.seed = 42;
  config.rank = rank;
  config.world_size = world;
  config.vocab_size = 1024;
  config.prefetch_batches = 3;
  return config;
}

// Rows of `steps` batches, with where each came from.
struct Taken {
  std::vector<int32_t> tokens, targets, positions, doc_ids;
  std::vector<std::pair<int32_t, int64_t>> windows;
};
void take(TrainLoader& loader, int steps, Taken& out) {
  for (int i = 0; i < steps; ++i) {
    const LoaderBatch b = loader.next();
    const Batch& m = b.batch;
    out.tokens.insert(out.tokens.end(), m.tokens.begin(), m.tokens.end());
    out.targets.insert(out.targets.end(), m.targets.begin(), m.targets.end());
    out.positions.insert(out.positions.end(), m.positions.begin(), m.positions.end());
    out.doc_ids.insert(out.doc_ids.end(), m.doc_ids.begin(), m.doc_ids.end());
    for (const SampleRef& r : b.samples)
      out.windows.emplace_back(r.source, r.window);
  }
}

TEST(TrainLoader, SameSeedSameSequenceOtherSeedOtherSequence) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 2, 40, 5, 60, 2);
  Taken a, b, c;
  {
    TrainLoader loader(one_source_config(dir, 6, 0, 1));
    take(loader, 10, a);
  }
  {
    TrainLoader loader(one_source_config(dir, 6, 0, 1));
    take(loader, 10, b);
  }
  LoaderConfig other = one_source_config(dir, 6, 0, 1);
  other.seed = 43;
  {
    TrainLoader loader(other);
    take(loader, 10, c);
  }
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.windows, b.windows);
  EXPECT_NE(a.windows, c.windows);
  // Shuffled: not the windows in file order.
  std::vector<std::pair<int32_t, int64_t>> in_order;
  for (int64_t w = 0; w < 60; ++w)
    in_order.emplace_back(0, w);
  EXPECT_NE(a.windows, in_order);
}

TEST(TrainLoader, RankSlicesConcatenateToTheSameGlobalBatchForAnyWorldSize) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 3, 30, 5, 50, 3);
  const int64_t global_batch = 12;
  const int steps = 7;
  std::vector<Taken> single(steps);
  {
    TrainLoader loader(one_source_config(dir, global_batch, 0, 1));
    for (int s = 0; s < steps; ++s)
      take(loader, 1, single[s]);
  }
  for (int world : {2, 3, 4}) {
    std::vector<std::unique_ptr<TrainLoader>> ranks;
    for (int r = 0; r < world; ++r)
      ranks.push_back(
          std::make_unique<TrainLoader>(one_source_config(dir, global_batch, r, world)));
    for (int s = 0; s < steps; ++s) {
      Taken joined;
      for (int r = 0; r < world; ++r)
        take(*ranks[static_cast<size_t>(r)], 1, joined);
      ASSERT_EQ(joined.windows, single[s].windows) << "world " << world << " step " << s;
      ASSERT_EQ(joined.tokens, single[s].tokens) << "world " << world << " step " << s;
      ASSERT_EQ(joined.targets, single[s].targets);
      ASSERT_EQ(joined.positions, single[s].positions);
      ASSERT_EQ(joined.doc_ids, single[s].doc_ids);
    }
  }
  EXPECT_THROW(TrainLoader(one_source_config(dir, global_batch, 0, 5)), Error);
}

TEST(TrainLoader, EachEpochVisitsEveryWindowOnceInANewOrder) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 2, 20, 5, 30, 4);
  TrainLoader loader(one_source_config(dir, 1, 0, 1));
  const int64_t n = loader.source_summaries()[0].num_samples;
  std::vector<std::vector<int64_t>> epochs(3);
  for (int e = 0; e < 3; ++e)
    for (int64_t i = 0; i < n; ++i) {
      const LoaderBatch b = loader.next();
      ASSERT_EQ(b.samples[0].epoch, e);
      epochs[static_cast<size_t>(e)].push_back(b.samples[0].window);
    }
  for (const auto& order : epochs) {
    const std::set<int64_t> distinct(order.begin(), order.end());
    EXPECT_EQ(static_cast<int64_t>(distinct.size()), n);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
}

TEST(TrainLoader, ResumesExactlyOnAnyNumberOfRanks) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 2, 30, 5, 50, 5);
  write_corpus(dir, "code", 2, 30, 5, 50, 6);
  auto mixed = [&](int rank, int world) {
    LoaderConfig config = one_source_config(dir, 12, rank, world);
    config.sources = {{"web", dir + "/web-*.h5", 0.75}, {"code", dir + "/code-*.h5", 0.25}};
    return config;
  };
  Taken uninterrupted;
  {
    TrainLoader loader(mixed(0, 1));
    take(loader, 20, uninterrupted);
  }
  // Stop after 8 steps, with batches already prefetched beyond them; keep only the state text.
  std::string saved;
  {
    TrainLoader loader(mixed(0, 1));
    Taken first;
    take(loader, 8, first);
    saved = loader.state().to_text();
  }
  const LoaderState state = LoaderState::from_text(saved, "state.yaml");
  EXPECT_EQ(state.samples_consumed, 8 * 12);
  for (int world : {1, 3, 4}) {
    std::vector<std::unique_ptr<TrainLoader>> ranks;
    for (int r = 0; r < world; ++r)
      ranks.push_back(std::make_unique<TrainLoader>(mixed(r, world), &state, "state.yaml"));
    Taken resumed;
    for (int s = 0; s < 12; ++s)
      for (auto& rank : ranks)
        take(*rank, 1, resumed);
    const size_t skip_rows = 8 * 12, row = 8;
    using Windows = std::vector<std::pair<int32_t, int64_t>>;
    const Windows expected(uninterrupted.windows.begin() + skip_rows, uninterrupted.windows.end());
    ASSERT_EQ(resumed.windows, expected) << "world " << world;
    ASSERT_EQ(resumed.tokens, std::vector<int32_t>(uninterrupted.tokens.begin() + skip_rows * row,
                                                   uninterrupted.tokens.end()));
  }
}

TEST(TrainLoader, StateRoundTripsAndRefusesAChangedSetup) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 2, 30, 5, 50, 7);
  LoaderState state;
  {
    TrainLoader loader(one_source_config(dir, 4, 0, 1));
    loader.next();
    loader.next();
    state = loader.state();
  }
  EXPECT_EQ(LoaderState::from_text(state.to_text(), "s"), state);
  auto resume_error = [&](const LoaderConfig& config) {
    try {
      TrainLoader loader(config, &state, "ckpt/loader.yaml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  LoaderConfig other_seed = one_source_config(dir, 4, 0, 1);
  other_seed.seed = 1;
  EXPECT_NE(resume_error(other_seed)
                .find("ckpt/loader.yaml: it was saved with data seed 42, but "
                      "this run's seed is 1"),
            std::string::npos);
  LoaderConfig other_seq = one_source_config(dir, 4, 0, 1);
  other_seq.seq_len = 9;
  EXPECT_NE(resume_error(other_seq).find("seq_len 8"), std::string::npos);
  LoaderConfig other_weight = one_source_config(dir, 4, 0, 1);
  other_weight.sources[0].weight = 2.0;
  EXPECT_NE(resume_error(other_weight).find("source 'web' had weight 1, now 2"), std::string::npos);
  write_corpus(dir, "web", 3, 30, 5, 50, 7);  // a third shard appears
  EXPECT_NE(resume_error(one_source_config(dir, 4, 0, 1)).find("its shards changed"),
            std::string::npos);
  EXPECT_THROW(LoaderState::from_text("loader_state_version: 1\nseed: 3\n", "s.yaml"), Error);
  std::string damaged = state.to_text();
  damaged.replace(damaged.find("samples_consumed: 8"), 19, "samples_consumed: 9");
  EXPECT_THROW(LoaderState::from_text(damaged, "s.yaml"), Error);
}

TEST(TrainLoader, MixingProportionsHoldAtEveryStep) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "a", 1, 40, 5, 50, 8);
  write_corpus(dir, "b", 1, 40, 5, 50, 9);
  write_corpus(dir, "c", 1, 40, 5, 50, 10);
  LoaderConfig config = one_source_config(dir, 10, 0, 1);
  config.sources = {
      {"a", dir + "/a-*.h5", 0.5}, {"b", dir + "/b-*.h5", 0.3}, {"c", dir + "/c-*.h5", 0.2}};
  TrainLoader loader(config);
  std::vector<int64_t> counts(3, 0);
  const double share[3] = {0.5, 0.3, 0.2};
  for (int step = 1; step <= 100; ++step) {
    for (const SampleRef& r : loader.next().samples)
      ++counts[static_cast<size_t>(r.source)];
    for (size_t s = 0; s < 3; ++s)
      ASSERT_LT(std::abs(static_cast<double>(counts[s]) - share[s] * step * 10), 1.0)
          << "source " << s << " step " << step;
  }
  // Each batch of 10 holds exactly 5, 3 and 2.
  EXPECT_EQ(counts, (std::vector<int64_t>{500, 300, 200}));
  const LoaderState state = loader.state();
  EXPECT_EQ(state.sources[0].drawn + state.sources[1].drawn + state.sources[2].drawn,
            state.samples_consumed);
}

TEST(TrainLoader, BatchesFeedTheModelsTargets) {
  const std::string dir = test::fresh_dir();
  write_corpus(dir, "web", 1, 30, 5, 50, 11);
  TrainLoader loader(one_source_config(dir, 2, 0, 1));
  const LoaderBatch b = loader.next();
  EXPECT_EQ(b.batch.batch, 2);
  EXPECT_EQ(b.batch.seq, 8);
  EXPECT_TRUE(b.batch.labels.empty());
  // targets[t] is the token after inputs[t]: within a row, targets are inputs shifted by one.
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t t = 0; t + 1 < 8; ++t)
      EXPECT_EQ(b.batch.targets[static_cast<size_t>(r * 8 + t)],
                b.batch.tokens[static_cast<size_t>(r * 8 + t + 1)]);
}

TEST(EvalLoader, FixedOrderSplitOverRanksWithAPaddedLastBatch) {
  const std::string dir = test::fresh_dir();
  const Corpus c = write_corpus(dir, "val", 2, 20, 5, 40, 12);
  EvalLoaderConfig config;
  config.path = dir + "/val-*.h5";
  config.seq_len = 8;
  config.global_batch = 4;
  config.vocab_size = 1024;
  EvalLoader single(config);
  const int64_t n = single.num_samples();
  ASSERT_GT(n % 4, 0) << "the test wants a partial last batch";
  std::vector<int64_t> order;
  std::vector<int32_t> tokens;
  int64_t batches = 0;
  while (auto b = single.next()) {
    ++batches;
    for (const SampleRef& r : b->samples)
      order.push_back(r.window);
    tokens.insert(tokens.end(), b->batch.tokens.begin(),
                  b->batch.tokens.begin() + b->real_rows * 8);
    // Padding rows score nothing.
    for (size_t i = static_cast<size_t>(b->real_rows * 8); i < b->batch.targets.size(); ++i)
      ASSERT_EQ(b->batch.targets[i], kIgnoreIndex);
  }
  EXPECT_EQ(batches, single.num_batches());
  std::vector<int64_t> in_order(static_cast<size_t>(n));
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(order, in_order);
  // The next call starts a second pass, the same as the first; so does restart() mid-pass.
  for (bool restart_mid_pass : {false, true}) {
    if (restart_mid_pass) {
      ASSERT_TRUE(single.next().has_value());
      single.restart();
    }
    std::vector<int32_t> again;
    while (auto b = single.next())
      again.insert(again.end(), b->batch.tokens.begin(),
                   b->batch.tokens.begin() + b->real_rows * 8);
    EXPECT_EQ(again, tokens);
  }
  // Two ranks: their rows, interleaved per batch, are the single-rank rows.
  config.world_size = 2;
  config.rank = 0;
  EvalLoader rank0(config);
  config.rank = 1;
  EvalLoader rank1(config);
  std::vector<int32_t> joined;
  for (;;) {
    auto b0 = rank0.next();
    auto b1 = rank1.next();
    ASSERT_EQ(b0.has_value(), b1.has_value());
    if (!b0) break;
    for (const auto* b : {&*b0, &*b1})
      joined.insert(joined.end(), b->batch.tokens.begin(),
                    b->batch.tokens.begin() + b->real_rows * 8);
  }
  EXPECT_EQ(joined, tokens);
  config.max_samples = 5;
  EXPECT_EQ(EvalLoader(config).num_samples(), 5);
}

}  // namespace
}  // namespace qwen3
