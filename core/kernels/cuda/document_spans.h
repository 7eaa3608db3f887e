#pragma once
// The documents of a packed micro-batch as cuDNN's ragged (THD) attention wants them: one batch
// entry per document, given by its length and its first token. Host code, built everywhere (the
// unit tests check it without a GPU); attention_cudnn.cpp uploads what it computes.
//
// The flash kernels mask by doc-id equality within a row; a row whose id comes back after another
// document (A B A) would let the second A see the first, which separate entries cannot say, so
// such rows are refused with the row, id and token named.
#include <cstdint>
#include <string>
#include <vector>

namespace qwen3::cuda {

struct DocumentSpans {
  int64_t documents = 0;  // runs of one id within a row (at least one per row)
  // Batch entries of the graph that serves them: the power of two at or above `documents`, so a
  // few graphs serve every micro-batch; the entries past `documents` have no tokens.
  int64_t bucket = 0;
  std::vector<int32_t> lengths;  // [bucket] tokens of each document, 0 past `documents`
  // [bucket + 1] first token of each document in the flattened [batch × seq] tokens; the
  // entries past `documents` (and the last) start at batch × seq.
  std::vector<int32_t> starts;
};

// Batch entries of the graph serving `documents` documents (DocumentSpans::bucket).
int64_t document_bucket(int64_t documents);

// doc_ids[batch, seq] split into runs of one id within each row. False, with `why_not` set, when
// an id resumes after another document in its row.
bool document_spans(const int32_t* doc_ids, int64_t batch, int64_t seq, DocumentSpans* spans,
                    std::string* why_not);

}  // namespace qwen3::cuda
