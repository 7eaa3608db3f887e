// Planted synchronisation bugs in the CUDA path, caught on the emulated device: each would pass on
// a GPU most of the time (the work happens to be done before the read) and fail some day. In the
// latest stream order (runtime.h) the read comes first, every time. The bugs are planted through
// the runtime stand-in, not by editing the product's code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/device.h"
#include "core/model/qwen3_model.h"
#include "core/ops/cuda_backend.h"
#include "core/util/error.h"
#include "parallel/communicator.h"
#include "parallel/nccl_communicator.h"
#include "parallel/zero_adamw.h"
#include "tests/common/synthetic_batch.h"
#include "tests/common/tiny_model.h"
#include "tests/emulator/runtime.h"
#include "trainer/train_step.h"

namespace qwen3 {
namespace {

using emulator::ScopedStreamOrder;
using emulator::StreamOrder;

// Two steps of the tiny model, two micro-batches each, the gradient reduction in small buckets on
// the side stream overlapping the backward pass; the parameters after them.
std::vector<float> train_two_steps(Backend& backend, Communicator& comm, int zero_stage) {
  const ModelConfig config = qwen3::test_data::tiny_model_config();
  Qwen3Model model(config, backend, ShardLayout::flat_multiple(comm.size()));
  model.init_weights(5);
  SingleRankCommunicator host;
  AdamWOptions options;
  options.zero_stage = zero_stage;
  options.grad_bucket_bytes = 4096;
  ZeroAdamW optimizer(backend, comm, host, model.layout(), model.params_padded(),
                      model.grads_padded(), options);
  optimizer.load_master_from_params();
  for (int step = 0; step < 2; ++step) {
    const Batch global = test_data::synthetic_global_batch(4, 32, config.vocab_size, 40, step);
    train_step(model, optimizer, host,
               {batch_rows(global, 0, 2, false), batch_rows(global, 2, 2, false)}, 3e-3);
  }
  return model.params_to_host();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The compute stream not waiting for the side stream's reduction: the optimizer reads the reduced
// gradient shard before the collective has written it. The latest order catches it at ZeRO 1 and
// 2; the eager order, like a GPU on a good day, does not.
TEST(PlantedBugs, ComputeStreamNotWaitingForTheReductionIsCaught) {
  auto gpu = make_cuda_backend(0);
  NcclCommunicator nccl;
  for (int stage : {1, 2}) {
    const std::vector<float> correct = train_two_steps(*gpu, nccl, stage);
    emulator::plant_dropped_waits(static_cast<cudaStream_t>(gpu->stream()), true);
    std::vector<float> eager, latest;
    {
      ScopedStreamOrder order(StreamOrder::kEager);
      eager = train_two_steps(*gpu, nccl, stage);
    }
    {
      ScopedStreamOrder order(StreamOrder::kLatest);
      try {
        latest = train_two_steps(*gpu, nccl, stage);
      } catch (const Error& e) {
        // A gradient read as NaN poison stops the step with a non-finite norm: caught too.
        EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
      }
    }
    emulator::plant_dropped_waits(static_cast<cudaStream_t>(gpu->stream()), false);
    EXPECT_TRUE(same_bits(eager, correct)) << "ZeRO " << stage << ": the eager order hides it";
    EXPECT_FALSE(same_bits(latest, correct)) << "ZeRO " << stage << ": the missing wait passed";
  }
  // Without the planted bug the latest order trains exactly as the eager one.
  const std::vector<float> again = train_two_steps(*gpu, nccl, 2);
  ScopedStreamOrder order(StreamOrder::kEager);
  EXPECT_TRUE(same_bits(again, train_two_steps(*gpu, nccl, 2)));
}

// The host reading a download before its stream is synchronised: download() with its
// synchronisation skipped returns what the host buffer held before, and the copy lands later.
TEST(PlantedBugs, HostReadingBeforeItsStreamIsSynchronisedIsCaught) {
  ScopedStreamOrder order(StreamOrder::kLatest);
  auto gpu = make_cuda_backend(0);
  gpu->synchronize();  // the backend's own set-up is not what is planted here
  auto sum = gpu->allocate(256);
  auto part = gpu->allocate(256);
  const TensorView total = sum->view(DType::F32, {4}), add = part->view(DType::F32, {4});
  const std::vector<float> start{1.0f, 2.0f, 3.0f, 4.0f}, more{0.5f, 0.5f, 0.5f, 0.5f};
  gpu->upload(start.data(), total);
  gpu->upload(more.data(), add);
  gpu->accumulate(add, total);
  std::vector<float> host(4, -7.0f);
  emulator::plant_skipped_synchronisations(static_cast<cudaStream_t>(gpu->stream()), 1);
  gpu->download(total, host.data());
  EXPECT_EQ(host, std::vector<float>(4, -7.0f)) << "the read saw the copy without a wait";
  cudaDeviceSynchronize();
  EXPECT_EQ(host, (std::vector<float>{1.5f, 2.5f, 3.5f, 4.5f})) << "the copy was only late";
}

}  // namespace
}  // namespace qwen3
