// The documents of a micro-batch as cuDNN's ragged attention takes them (document_spans.h),
// checked against lengths written out by hand and against the ids they came from.
#include "core/kernels/cuda/document_spans.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../common/attention_documents.h"

namespace {

using qwen3::cuda::document_bucket;
using qwen3::cuda::document_spans;
using qwen3::cuda::DocumentSpans;

TEST(DocumentSpans, BucketIsThePowerOfTwoAtOrAbove) {
  EXPECT_EQ(document_bucket(0), 1);
  EXPECT_EQ(document_bucket(1), 1);
  EXPECT_EQ(document_bucket(2), 2);
  EXPECT_EQ(document_bucket(3), 4);
  EXPECT_EQ(document_bucket(64), 64);
  EXPECT_EQ(document_bucket(65), 128);
}

TEST(DocumentSpans, RowsSplitAtEveryChangeOfIdAndAtRowEnds) {
  // Row 1 starts with the id row 0 ended with: rows are separate sequences, so a new document.
  const std::vector<int32_t> ids = {4, 4, 4, 9, 2, 2, 2, 2, 2, 7, 7, 7};
  DocumentSpans spans;
  std::string why_not;
  ASSERT_TRUE(document_spans(ids.data(), 2, 6, &spans, &why_not)) << why_not;
  EXPECT_EQ(spans.documents, 5);
  EXPECT_EQ(spans.bucket, 8);
  EXPECT_EQ(spans.lengths, (std::vector<int32_t>{3, 1, 2, 3, 3, 0, 0, 0}));
  EXPECT_EQ(spans.starts, (std::vector<int32_t>{0, 3, 4, 6, 9, 12, 12, 12, 12}));
}

TEST(DocumentSpans, EveryTokenLiesInTheSpanOfItsOwnId) {
  const int64_t batch = 3, seq = 300;
  const std::vector<int32_t> ids =
      qwen3::test_data::documents({{1, 7, 64, 150, 78}, {300}, {33, 1, 200, 66}}, 40);
  DocumentSpans spans;
  std::string why_not;
  ASSERT_TRUE(document_spans(ids.data(), batch, seq, &spans, &why_not)) << why_not;
  ASSERT_EQ(spans.documents, 10);
  ASSERT_EQ(spans.bucket, 16);
  int64_t covered = 0;
  for (int64_t doc = 0; doc < spans.documents; ++doc) {
    const int32_t start = spans.starts[doc], length = spans.lengths[doc];
    ASSERT_GT(length, 0) << "document " << doc;
    EXPECT_EQ(start, covered) << "document " << doc << " does not follow the one before";
    EXPECT_EQ(start / seq, (start + length - 1) / seq) << "document " << doc << " crosses a row";
    for (int32_t t = start; t < start + length; ++t)
      EXPECT_EQ(ids[t], ids[start]) << "token " << t;
    if (start % seq != 0) EXPECT_NE(ids[start - 1], ids[start]) << "document " << doc;
    covered += length;
  }
  EXPECT_EQ(covered, batch * seq);
}

TEST(DocumentSpans, OutOfOrderIdsAreFineWhileEachIsContiguous) {
  const std::vector<int32_t> ids = {30, 30, 5, 5, 5, 17};
  DocumentSpans spans;
  std::string why_not;
  ASSERT_TRUE(document_spans(ids.data(), 1, 6, &spans, &why_not)) << why_not;
  EXPECT_EQ(spans.lengths, (std::vector<int32_t>{2, 3, 1, 0}));
}

TEST(DocumentSpans, AnIdResumingInItsRowIsRefusedNamingRowIdAndToken) {
  const std::vector<int32_t> ids = {1, 1, 1, 1, 3, 3, 8, 8, 3, 3};
  DocumentSpans spans;
  std::string why_not;
  EXPECT_FALSE(document_spans(ids.data(), 2, 5, &spans, &why_not));
  EXPECT_NE(why_not.find("row 1: document 3 resumes at token 3"), std::string::npos) << why_not;
}

}  // namespace
