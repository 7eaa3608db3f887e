// The op interface rejects misuse with messages that name the op and the argument.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "core/ops/backend.h"
#include "core/util/error.h"

namespace {

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const qwen3::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(BackendChecks, ShapeMismatchNamesOpAndArgument) {
  auto backend = qwen3::make_cpu_backend();
  auto buffer = backend->allocate(4096);
  const qwen3::TensorView x = buffer->view(qwen3::DType::F32, {4, 8});
  const qwen3::TensorView w = buffer->view(qwen3::DType::F32, {3, 8}, 256);
  const qwen3::TensorView y_wrong = buffer->view(qwen3::DType::F32, {4, 4}, 512);
  const std::string m = error_of([&] { backend->linear_forward(x, w, y_wrong); });
  EXPECT_NE(m.find("linear_forward"), std::string::npos) << m;
  EXPECT_NE(m.find("'y'"), std::string::npos) << m;
  EXPECT_NE(m.find("[4, 3]"), std::string::npos) << m;
}

TEST(BackendChecks, WrongDtypeIsNamed) {
  auto backend = qwen3::make_cpu_backend();
  auto buffer = backend->allocate(4096);
  const qwen3::TensorView tokens_as_float = buffer->view(qwen3::DType::F32, {4});
  const qwen3::TensorView table = buffer->view(qwen3::DType::F32, {10, 8}, 256);
  const qwen3::TensorView out = buffer->view(qwen3::DType::F32, {4, 8}, 1024);
  const std::string m = error_of([&] { backend->embedding_forward(tokens_as_float, table, out); });
  EXPECT_NE(m.find("'tokens' is f32, expected i32"), std::string::npos) << m;
}

TEST(BackendChecks, TokenIdOutsideVocabularyIsRejected) {
  auto backend = qwen3::make_cpu_backend();
  auto buffer = backend->allocate(4096);
  const qwen3::TensorView tokens = buffer->view(qwen3::DType::I32, {3});
  const qwen3::TensorView table = buffer->view(qwen3::DType::F32, {10, 8}, 256);
  const qwen3::TensorView out = buffer->view(qwen3::DType::F32, {3, 8}, 1024);
  const std::vector<int32_t> ids{1, 10, 2};
  backend->upload(ids.data(), tokens);
  const std::string m = error_of([&] { backend->embedding_forward(tokens, table, out); });
  EXPECT_NE(m.find("token id 10 at index 1 is outside [0, 10)"), std::string::npos) << m;
}

TEST(BackendChecks, ViewsAreBoundsChecked) {
  auto backend = qwen3::make_cpu_backend();
  auto buffer = backend->allocate(64);
  EXPECT_THROW(buffer->view(qwen3::DType::F32, {17}), qwen3::Error);
  EXPECT_NO_THROW(buffer->view(qwen3::DType::F32, {16}));
}

}  // namespace

namespace {

TEST(BackendMemory, LiveAndPeakBytesFollowTheBuffers) {
  auto backend = qwen3::make_cpu_backend(1);
  const size_t base = backend->memory_stats().current_bytes;
  auto a = backend->allocate(1000);
  auto b = backend->allocate(2500);
  EXPECT_EQ(backend->memory_stats().current_bytes, base + 3500);
  EXPECT_EQ(backend->memory_stats().peak_bytes, base + 3500);
  a.reset();
  EXPECT_EQ(backend->memory_stats().current_bytes, base + 2500);
  EXPECT_EQ(backend->memory_stats().peak_bytes, base + 3500);
  backend->reset_peak_memory();
  EXPECT_EQ(backend->memory_stats().peak_bytes, base + 2500);
  auto c = backend->allocate(100);
  EXPECT_EQ(backend->memory_stats().peak_bytes, base + 2600);
  // The view still reaches the buffer's own memory through the count.
  float* p = static_cast<float*>(c->data());
  p[0] = 1.5f;
  EXPECT_EQ(c->view(qwen3::DType::F32, {25}).as<float>()[0], 1.5f);
  EXPECT_EQ(c->bytes(), 100u);
}

TEST(BackendMemory, ABufferMayOutliveItsBackend) {
  auto backend = qwen3::make_cpu_backend(1);
  auto buffer = backend->allocate(64);
  backend.reset();
  buffer.reset();  // must not touch the destroyed backend
  SUCCEED();
}

// The CPU backend has one attention implementation: it is what runs whatever a stage asks, said
// in the note when the stage named other kernels; an unknown name is refused.
TEST(BackendChecks, SetDocumentsNeedsIdsAndAShape) {
  auto backend = qwen3::make_cpu_backend();
  const std::vector<int32_t> ids(8, 0);
  backend->set_documents(ids.data(), 2, 4);
  const std::string missing = error_of([&] { backend->set_documents(nullptr, 2, 4); });
  EXPECT_NE(missing.find("set_documents: no document ids for batch 2 × 4"), std::string::npos)
      << missing;
  const std::string empty = error_of([&] { backend->set_documents(ids.data(), 0, 4); });
  EXPECT_NE(empty.find("batch 0 × 4"), std::string::npos) << empty;
}

TEST(BackendChecks, AttentionChoiceOnTheCpuIsItsOnlyImplementation) {
  auto backend = qwen3::make_cpu_backend();
  qwen3::AttentionRequest request{"auto", 2, 64, 4, 2, 16, true};
  const qwen3::AttentionChoice automatic = backend->choose_attention(request);
  EXPECT_EQ(automatic.kernels, "cpu");
  EXPECT_EQ(automatic.note, "");
  request.kernels = "cudnn";
  const qwen3::AttentionChoice named = backend->choose_attention(request);
  EXPECT_EQ(named.kernels, "cpu");
  EXPECT_EQ(named.note, "the cpu backend has one attention implementation");
  EXPECT_FALSE(named.warn);
  request.kernels = "Flash";
  EXPECT_THROW(backend->choose_attention(request), qwen3::Error);
}

}  // namespace
