#include "trainer/evaluate.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

double EvalResult::loss() const {
  return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0;
}

double EvalResult::perplexity() const {
  return std::exp(loss());
}

double EvalResult::bucket_loss(size_t b) const {
  QWEN3_CHECK(b < bucket_tokens.size(), "bucket {} out of range: the result has {} buckets", b,
              bucket_tokens.size());
  return bucket_tokens[b] > 0 ? bucket_loss_sum[b] / static_cast<double>(bucket_tokens[b]) : 0.0;
}

EvalResult evaluate(Qwen3Model& model, EvalLoader& loader, Communicator& host_comm,
                    int64_t micro_batch, int64_t bucket_width, bool document_attention) {
  QWEN3_CHECK(micro_batch >= 1, "evaluation micro-batch must be at least 1 row, got {}",
              micro_batch);
  QWEN3_CHECK(bucket_width >= 0, "evaluation bucket width must be 0 (none) or positive, got {}",
              bucket_width);
  QWEN3_CHECK(host_comm.device() == Device::CPU,
              "evaluation sums are reduced on the host, but the communicator is a {} one",
              host_comm.kind());
  EvalResult result;
  result.bucket_width = bucket_width;
  loader.restart();
  while (std::optional<LoaderBatch> next = loader.next()) {
    const Batch& batch = next->batch;
    const int64_t seq = batch.seq;
    // The loader gives next-token targets, not HF labels, so position t is scored on targets[t].
    QWEN3_CHECK(!batch.targets.empty(), "evaluation batches must carry next-token targets");
    // Every rank sees the same number of batches of the same seq_len, so the bucket count, and
    // with it the size of the reduction below, agree across ranks.
    if (bucket_width > 0 && result.bucket_tokens.empty()) {
      const auto buckets = static_cast<size_t>((seq + bucket_width - 1) / bucket_width);
      result.bucket_loss_sum.assign(buckets, 0.0);
      result.bucket_tokens.assign(buckets, 0);
    }
    result.samples += next->real_rows;
    // Padding rows score nothing, so they are not run at all; real rows come first.
    for (int64_t first = 0; first < next->real_rows; first += micro_batch) {
      const int64_t rows = std::min(micro_batch, next->real_rows - first);
      const Batch micro = batch_rows(batch, first, rows, document_attention);
      model.forward(micro);
      const std::vector<float> losses = model.token_losses_to_host();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < seq; ++t) {
          const auto i = static_cast<size_t>(r * seq + t);
          if (micro.targets[i] == kIgnoreIndex) continue;
          const double loss = losses[i];
          result.loss_sum += loss;
          result.tokens += 1;
          if (bucket_width > 0) {
            const auto b = static_cast<size_t>(t / bucket_width);
            result.bucket_loss_sum[b] += loss;
            result.bucket_tokens[b] += 1;
          }
        }
    }
  }

  // Two collectives for everything: the loss sums as doubles, the counts as integers.
  std::vector<double> sums = {result.loss_sum};
  sums.insert(sums.end(), result.bucket_loss_sum.begin(), result.bucket_loss_sum.end());
  std::vector<int64_t> counts = {result.samples, result.tokens};
  counts.insert(counts.end(), result.bucket_tokens.begin(), result.bucket_tokens.end());
  host_comm.all_reduce(sums.data(), sums.data(), sums.size(), DType::F64, ReduceOp::Sum);
  host_comm.all_reduce(counts.data(), counts.data(), counts.size(), DType::I64, ReduceOp::Sum);
  result.loss_sum = sums[0];
  std::copy(sums.begin() + 1, sums.end(), result.bucket_loss_sum.begin());
  result.samples = counts[0];
  result.tokens = counts[1];
  std::copy(counts.begin() + 2, counts.end(), result.bucket_tokens.begin());
  return result;
}

}  // namespace qwen3
