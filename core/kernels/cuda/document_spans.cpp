#include "core/kernels/cuda/document_spans.h"

#include <unordered_set>

#include <fmt/format.h>

namespace qwen3::cuda {

int64_t document_bucket(int64_t documents) {
  int64_t bucket = 1;
  while (bucket < documents)
    bucket *= 2;
  return bucket;
}

bool document_spans(const int32_t* doc_ids, int64_t batch, int64_t seq, DocumentSpans* spans,
                    std::string* why_not) {
  spans->lengths.clear();
  spans->starts.clear();
  std::unordered_set<int32_t> finished;  // ids of the current row's earlier documents
  for (int64_t row = 0; row < batch; ++row) {
    finished.clear();
    const int32_t* ids = doc_ids + row * seq;
    for (int64_t t = 0; t < seq; ++t) {
      if (t > 0 && ids[t] == ids[t - 1]) {
        ++spans->lengths.back();
        continue;
      }
      if (t > 0) finished.insert(ids[t - 1]);
      if (finished.count(ids[t]) != 0) {
        *why_not = fmt::format(
            "row {}: document {} resumes at token {} after another document, which cuDNN's "
            "ragged layout (one entry per contiguous document) cannot mask",
            row, ids[t], t);
        return false;
      }
      spans->starts.push_back(static_cast<int32_t>(row * seq + t));
      spans->lengths.push_back(1);
    }
  }
  spans->documents = static_cast<int64_t>(spans->lengths.size());
  spans->bucket = document_bucket(spans->documents);
  spans->lengths.resize(static_cast<size_t>(spans->bucket), 0);
  spans->starts.resize(static_cast<size_t>(spans->bucket + 1), static_cast<int32_t>(batch * seq));
  return true;
}

}  // namespace qwen3::cuda
