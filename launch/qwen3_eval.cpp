// qwen3-eval: the loss and perplexity of a model checkpoint on held-out shards, alone or under
// mpirun (each rank evaluates its rows of every batch; the sums are reduced over ranks), with the
// loss broken down by position within the window. Rank 0 prints a table for people and, as the
// last line of stdout, one JSON object for programs.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/model/hf_checkpoint.h"
#include "core/model/qwen3_model.h"
#include "core/util/error.h"
#include "core/util/format.h"
#include "core/util/options.h"
#include "dataloader/eval_loader.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_environment.h"
#include "trainer/compute_setup.h"
#include "trainer/evaluate.h"

namespace {

constexpr int kExitUsage = 2;  // the command line itself is wrong; errors exit with 1
constexpr int64_t kDefaultSeqLen = 4096;

const char* const kUsage =
    "usage: qwen3-eval --checkpoint DIR --data [NAME=]GLOB [--data ...] [options]\n"
    "       mpirun -np N qwen3-eval ...     (each rank evaluates its rows of every batch)\n"
    "\n"
    "Mean next-token loss and perplexity of a model on held-out shards, per source and by\n"
    "position within the window. The last line of stdout is one JSON object.\n"
    "  --checkpoint DIR      Hugging Face model directory (config.json + model.safetensors);\n"
    "                        every training checkpoint is one\n"
    "  --data [NAME=]GLOB    shards of one source, e.g. val='data/web/val-*.h5'; repeat for\n"
    "                        several. NAME defaults to the glob's directory name\n"
    "  --seq-len N           tokens per window (default 4096, at most the model's\n"
    "                        max_position_embeddings)\n"
    "  --micro-batch ROWS    rows per forward pass on each rank (default 1)\n"
    "  --batch ROWS          rows per batch, all ranks together (default ranks x micro-batch)\n"
    "  --max-samples N       evaluate only the first N windows of each source (default: all)\n"
    "  --bucket-tokens N     width of the position buckets (default 4096; 0: none)\n"
    "  --rope-theta X        override the config's rope_theta\n"
    "  --backend NAME        cuda (bf16, one GPU per rank; the default) or cpu (fp32)\n"
    "  --document-attention  restart positions and attention at document boundaries, as a\n"
    "                        stage with document_attention: true trains (default: off)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DataSpec {
  std::string name, glob;
};

struct Options {
  std::string checkpoint;
  std::vector<DataSpec> data;
  int64_t seq_len = 0;  // 0: the default
  int64_t micro_batch = 1;
  int64_t batch = 0;  // 0: ranks x micro_batch
  int64_t max_samples = 0;
  int64_t bucket_tokens = 4096;
  double rope_theta = 0.0;  // 0: the config's
  bool document_attention = false;
  std::string backend = "cuda";
};

int64_t parse_int(const std::string& flag, const std::string& text, int64_t minimum) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size())
    throw UsageError(flag + " expects an integer, got '" + text + "'");
  if (value < minimum)
    throw UsageError(flag + " must be at least " + std::to_string(minimum) + ", got " + text);
  return value;
}

double parse_positive(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size() && std::isfinite(value) && value > 0) return value;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " expects a positive number, got '" + text + "'");
}

// NAME=GLOB names the source; a bare GLOB is named after its directory ("data/web/val-*.h5":
// "web"). A '=' after a '/' belongs to the path.
DataSpec parse_data(const std::string& text) {
  const size_t equals = text.find('=');
  if (equals != std::string::npos && equals > 0 && text.find('/') > equals)
    return {text.substr(0, equals), text.substr(equals + 1)};
  if (equals == 0) throw UsageError("--data '" + text + "' has an empty NAME before '='");
  const size_t last_slash = text.rfind('/');
  std::string dir = last_slash == std::string::npos ? "" : text.substr(0, last_slash);
  while (!dir.empty() && dir.back() == '/')
    dir.pop_back();
  const size_t slash = dir.rfind('/');
  std::string name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") name = text;
  return {name, text};
}

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  if (args.empty()) throw UsageError("no arguments");
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    static const std::vector<std::string> kFlags = {
        "--checkpoint",  "--data",          "--seq-len",    "--micro-batch",        "--batch",
        "--max-samples", "--bucket-tokens", "--rope-theta", "--document-attention", "--backend"};
    if (flag == "--document-attention") {  // the one flag without a value
      o.document_attention = true;
      continue;
    }
    if (std::find(kFlags.begin(), kFlags.end(), flag) == kFlags.end()) {
      const std::string hint = qwen3::closest_key(flag, kFlags);
      throw UsageError("unknown option '" + flag + "'" +
                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    if (i + 1 == args.size()) throw UsageError(flag + " needs a value");
    const std::string& value = args[++i];
    if (flag == "--checkpoint")
      o.checkpoint = value;
    else if (flag == "--data")
      o.data.push_back(parse_data(value));
    else if (flag == "--seq-len")
      o.seq_len = parse_int(flag, value, 1);
    else if (flag == "--micro-batch")
      o.micro_batch = parse_int(flag, value, 1);
    else if (flag == "--batch")
      o.batch = parse_int(flag, value, 1);
    else if (flag == "--max-samples")
      o.max_samples = parse_int(flag, value, 0);
    else if (flag == "--bucket-tokens")
      o.bucket_tokens = parse_int(flag, value, 0);
    else if (flag == "--rope-theta")
      o.rope_theta = parse_positive(flag, value);
    else if (flag == "--backend") {
      if (value != "cuda" && value != "cpu")
        throw UsageError("--backend must be cuda or cpu, got '" + value + "'");
      o.backend = value;
    }
  }
  if (o.checkpoint.empty()) throw UsageError("--checkpoint DIR is required");
  if (o.data.empty()) throw UsageError("at least one --data [NAME=]GLOB is required");
  for (size_t a = 0; a < o.data.size(); ++a)
    for (size_t b = 0; b < a; ++b)
      if (o.data[a].name == o.data[b].name)
        throw UsageError("two --data sources are named '" + o.data[a].name +
                         "'; name them apart with --data NAME=GLOB");
  return o;
}

// "4K" for multiples of 1,024 tokens, the plain count otherwise.
std::string token_label(int64_t tokens) {
  return tokens % 1024 == 0 && tokens > 0 ? std::to_string(tokens / 1024) + "K"
                                          : std::to_string(tokens);
}

struct Bucket {
  int64_t begin, end;
};

std::vector<Bucket> buckets_of(const qwen3::EvalResult& r, int64_t seq_len) {
  std::vector<Bucket> out;
  for (size_t b = 0; b < r.bucket_tokens.size(); ++b) {
    const auto begin = static_cast<int64_t>(b) * r.bucket_width;
    out.push_back({begin, std::min(begin + r.bucket_width, seq_len)});
  }
  return out;
}

void print_report(const Options& o, const std::vector<qwen3::EvalResult>& results,
                  int64_t seq_len) {
  using qwen3::with_commas;
  std::printf("\n%-16s %10s %14s %9s %11s\n", "source", "samples", "tokens", "loss", "perplexity");
  double loss_sum = 0.0;
  int64_t tokens = 0, samples = 0;
  for (const qwen3::EvalResult& r : results) {
    std::printf("%-16s %10s %14s %9.4f %11.3f\n", r.name.c_str(), with_commas(r.samples).c_str(),
                with_commas(r.tokens).c_str(), r.loss(), r.perplexity());
    loss_sum += r.loss_sum;
    tokens += r.tokens;
    samples += r.samples;
  }
  const double loss = tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0;
  if (results.size() > 1)
    std::printf("%-16s %10s %14s %9.4f %11.3f\n", "all (by tokens)", with_commas(samples).c_str(),
                with_commas(tokens).c_str(), loss, std::exp(loss));

  const std::vector<Bucket> buckets = buckets_of(results.front(), seq_len);
  if (buckets.size() > 1) {
    std::printf("\nloss by position in the window (nats)\n%-16s", "positions");
    for (const qwen3::EvalResult& r : results)
      std::printf(" %12s", r.name.c_str());
    std::printf("\n");
    for (size_t b = 0; b < buckets.size(); ++b) {
      const std::string label = token_label(buckets[b].begin) + "-" + token_label(buckets[b].end);
      std::printf("%-16s", label.c_str());
      for (const qwen3::EvalResult& r : results)
        std::printf(" %12.4f", r.bucket_loss(b));
      std::printf("\n");
    }
  }

  nlohmann::ordered_json json;
  json["checkpoint"] = o.checkpoint;
  json["seq_len"] = seq_len;
  json["loss"] = loss;
  json["perplexity"] = std::exp(loss);
  json["tokens"] = tokens;
  json["samples"] = samples;
  nlohmann::ordered_json sources = nlohmann::ordered_json::object();
  for (const qwen3::EvalResult& r : results) {
    nlohmann::ordered_json s;
    s["loss"] = r.loss();
    s["perplexity"] = r.perplexity();
    s["tokens"] = r.tokens;
    s["samples"] = r.samples;
    s["buckets"] = nlohmann::ordered_json::array();
    const std::vector<Bucket> own = buckets_of(r, seq_len);
    for (size_t b = 0; b < own.size(); ++b)
      s["buckets"].push_back({{"begin", own[b].begin},
                              {"end", own[b].end},
                              {"loss", r.bucket_loss(b)},
                              {"tokens", r.bucket_tokens[b]}});
    sources[r.name] = std::move(s);
  }
  json["sources"] = std::move(sources);
  std::printf("\n%s\n", json.dump().c_str());
}

// Everything after MPI start-up. Returns the exit status; throws for errors.
int run(const qwen3::MpiEnvironment& mpi, const std::vector<std::string>& args) {
  using namespace qwen3;
  const bool printer = mpi.world_rank() == 0;
  Options o;
  try {
    o = parse_options(args);
    if (o.batch == 0) o.batch = o.micro_batch * mpi.world_size();
    if (o.batch % mpi.world_size() != 0)
      throw UsageError(
          fmt::format("--batch {} does not split evenly over {} ranks", o.batch, mpi.world_size()));
  } catch (const UsageError& e) {
    if (printer) std::fprintf(stderr, "qwen3-eval: %s\n\n%s", e.what(), kUsage);
    return kExitUsage;
  }

  QWEN3_CHECK(is_hf_model_dir(o.checkpoint),
              "--checkpoint '{}' is not a Hugging Face model directory: it needs config.json and "
              "model.safetensors (or model.safetensors.index.json)",
              o.checkpoint);
  ModelConfig config = load_hf_config(o.checkpoint);
  if (o.rope_theta > 0) config.rope_theta = o.rope_theta;
  const int64_t seq_len =
      o.seq_len > 0 ? o.seq_len : std::min(kDefaultSeqLen, config.max_position_embeddings);
  QWEN3_CHECK(seq_len <= config.max_position_embeddings,
              "--seq-len {} exceeds the model's max_position_embeddings {} ({}/config.json)",
              seq_len, config.max_position_embeddings, o.checkpoint);

  auto comm = MpiCommunicator::world();
  // Every source's shards are opened and checked before the first forward pass.
  std::vector<std::unique_ptr<EvalLoader>> loaders;
  for (const DataSpec& spec : o.data) {
    EvalLoaderConfig c;
    c.name = spec.name;
    c.path = spec.glob;
    c.seq_len = seq_len;
    c.global_batch = o.batch;
    c.rank = comm->rank();
    c.world_size = comm->size();
    c.vocab_size = config.vocab_size;
    c.max_samples = o.max_samples;
    try {
      loaders.push_back(std::make_unique<EvalLoader>(c));
    } catch (const Error& e) {
      // The message names the source and shard; add the flags behind it, such as the window
      // length a too-short shard is measured against.
      std::string message = e.what();
      if (message.rfind(rank_prefix(), 0) == 0) message.erase(0, rank_prefix().size());
      throw_error(
          fmt::format("{} (--data {}={}, --seq-len {})", message, spec.name, spec.glob, seq_len));
    }
  }

  // Evaluation reduces only host scalars over MPI: no NCCL communicator.
  ComputeSetup compute = make_compute_setup(o.backend, mpi.local_rank(), *comm, false);
  Qwen3Model model(config, *compute.backend);
  load_hf_weights(model, o.checkpoint);
  if (printer)
    std::printf(
        "qwen3-eval: %s (%s layers, vocab %s) on %d rank%s (%s); windows of %s tokens, batches "
        "of %s rows, micro-batches of %s\n",
        o.checkpoint.c_str(), with_commas(config.num_hidden_layers).c_str(),
        with_commas(config.vocab_size).c_str(), comm->size(), comm->size() > 1 ? "s" : "",
        compute.description.c_str(), with_commas(seq_len).c_str(), with_commas(o.batch).c_str(),
        with_commas(o.micro_batch).c_str());

  std::vector<EvalResult> results;
  for (size_t s = 0; s < loaders.size(); ++s) {
    const auto start = std::chrono::steady_clock::now();
    EvalResult r =
        evaluate(model, *loaders[s], *comm, o.micro_batch, o.bucket_tokens, o.document_attention);
    r.name = o.data[s].name;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (printer) {
      std::printf(
          "%s: %s windows in %.1f s (%s tokens/s)\n", r.name.c_str(),
          with_commas(r.samples).c_str(), seconds,
          with_commas(static_cast<int64_t>(static_cast<double>(r.tokens) / std::max(seconds, 1e-9)))
              .c_str());
      std::fflush(stdout);
    }
    results.push_back(std::move(r));
  }
  if (printer) print_report(o, results, seq_len);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    qwen3::MpiEnvironment mpi(&argc, &argv);
    return run(mpi, args);
  } catch (const std::exception& e) {
    qwen3::MpiEnvironment::abort_job("qwen3-eval", e.what());
  }
}
