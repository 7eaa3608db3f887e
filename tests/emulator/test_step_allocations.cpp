// No device allocation or free inside a training step after the first, on the emulated device:
// cudaFree waits for the whole device (the NCCL collectives on the side stream included), so one
// inside a step stalls it. The first step may allocate (activations, scratch, GEMM plans); the
// steps after it, and a forward at a smaller batch (an evaluation's last micro-batch), must not.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/model/qwen3_model.h"
#include "core/ops/cuda_backend.h"
#include "parallel/communicator.h"
#include "parallel/nccl_communicator.h"
#include "parallel/zero_adamw.h"
#include "tests/common/synthetic_batch.h"
#include "tests/common/tiny_model.h"
#include "tests/emulator/runtime.h"
#include "trainer/train_step.h"

namespace qwen3 {
namespace {

TEST(StepAllocations, NoneAfterTheFirstStep) {
  const ModelConfig config = test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  NcclCommunicator nccl;
  SingleRankCommunicator host;
  for (int zero_stage : {1, 2}) {
    Qwen3Model model(config, *gpu, ShardLayout::flat_multiple(nccl.size()));
    model.init_weights(3);
    AdamWOptions options;
    options.zero_stage = zero_stage;
    options.grad_bucket_bytes = 4096;  // several buckets on the side stream
    ZeroAdamW optimizer(*gpu, nccl, host, model.layout(), model.params_padded(),
                        model.grads_padded(), options);
    optimizer.load_master_from_params();
    auto step = [&](int64_t index) {
      const Batch global = test_data::synthetic_global_batch(4, 32, config.vocab_size, 8, index);
      train_step(model, optimizer, host, test_data::rank_micro_batches(global, 0, 1, 2), 3e-3);
    };
    step(0);
    gpu->synchronize();
    const size_t after_first = emulator::device_allocation_calls();
    for (int64_t i = 1; i < 4; ++i)
      step(i);
    const Batch last = test_data::synthetic_global_batch(1, 32, config.vocab_size, 9, 0);
    EXPECT_GT(model.forward(last).tokens, 0);
    gpu->synchronize();
    EXPECT_EQ(emulator::device_allocation_calls(), after_first)
        << "ZeRO " << zero_stage << ": cudaMalloc or cudaFree inside steps 2-4 or the forward";
  }
}

// A stage reserves its activations at its start: the forwards after it, at its micro-batch or
// below, allocate none. A first forward at one row (as the stage before it) has made the
// backend's scratch and GEMM plans; the reservation for four rows then grows the activations.
TEST(StepAllocations, ReservedActivationsServeEveryForwardOfTheStage) {
  const ModelConfig config = test_data::tiny_model_config();
  auto gpu = make_cuda_backend(0);
  Qwen3Model model(config, *gpu);
  model.init_weights(3);
  auto forward = [&](int64_t rows) {
    const Batch batch = test_data::synthetic_global_batch(rows, 32, config.vocab_size, 8, rows);
    EXPECT_GT(model.forward(batch).tokens, 0);
    gpu->synchronize();
  };
  forward(1);
  const size_t before = emulator::device_allocation_calls();
  model.reserve_activations(4, 32);
  gpu->synchronize();
  const size_t reserved = emulator::device_allocation_calls();
  EXPECT_GT(reserved, before) << "four rows' activations fit one row's buffer";
  for (int64_t rows : {4, 1, 3})
    forward(rows);
  EXPECT_EQ(emulator::device_allocation_calls(), reserved)
      << "a forward allocated device memory after the stage's reservation";
}

}  // namespace
}  // namespace qwen3
