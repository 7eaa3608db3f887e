#pragma once
// AdamW over ZeRO shards of the flat buffers.
//
//   stage 0  gradients all-reduced once per step; every rank holds the whole optimizer state.
//   stage 1  gradients accumulate locally over micro-batches and are reduce-scattered once per
//            step; each rank holds the optimizer state of its shard only; the updated shards
//            are all-gathered.
//   stage 2  each micro-batch's gradient is reduce-scattered as soon as its backward ends and
//            accumulated into an fp32 shard, so between micro-batches a rank keeps only its shard
//            of the reduced gradient; otherwise as stage 1.
//
// The optimizer state is fp32 on every backend: master weights, first and second moments, one
// each per element of the rank's range (the shard; the whole buffer at stage 0). After an update
// the master weights are copied (converted to the storage dtype) into the model's parameters.
//
// A step, with the trainer doing forward and backward:
//   zero_grad(); for each micro-batch { forward; backward; micro_batch_done(); }
//   norm = reduce_gradients(); if (finite(norm)) update(lr, norm);
#include <cstdint>
#include <memory>
#include <vector>

#include "core/model/param_layout.h"
#include "core/ops/backend.h"
#include "parallel/communicator.h"
#include "parallel/decay_rule.h"
#include "parallel/shard_layout.h"

namespace qwen3 {

struct AdamWOptions {
  // β2 = 0.95 rather than PyTorch's 0.999: the usual choice for LLM pre-training (GPT-3, LLaMA,
  // OLMo), where v must follow gradient scales that change over thousands of steps.
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  // Global gradient-norm clipping threshold; 0 turns clipping off. 1.0 as in GPT-3 and LLaMA.
  double grad_clip = 1.0;
  DecayRule decay;
  int zero_stage = 1;
};

class ZeroAdamW {
 public:
  // `params` and `grads`: the model's padded flat buffers [padded_size], padded_size a multiple
  // of ShardLayout::flat_multiple(comm.size()). `comm` carries the buffers (MPI on CPU, NCCL on
  // GPU); `host_comm` the scalar reductions (the norm). They may be the same communicator.
  ZeroAdamW(Backend& backend, Communicator& comm, Communicator& host_comm,
            const ParamLayout& layout, TensorView params, TensorView grads,
            const AdamWOptions& options);

  // Copies this rank's range of the parameters into the fp32 master weights. Call once the
  // weights are initialised or loaded, before the first update.
  void load_master_from_params();

  // Zeroes the model's gradients and, at stage 2, the reduced-gradient shard.
  void zero_grad();
  // After each micro-batch's backward. Stage 2 reduce-scatters now, adds the result to the fp32
  // shard and zeroes the working gradients; stages 0 and 1 keep accumulating locally.
  void micro_batch_done();
  // Finishes the reduction (stage 0 all-reduce, stage 1 reduce-scatter) and returns the global
  // L2 norm of the summed gradient, before clipping; the same value on every rank.
  double reduce_gradients();
  // Clips to options.grad_clip with PyTorch's coefficient min(1, clip / (norm + 1e-6)), runs
  // AdamW on this rank's range with learning rate `lr`, and all-gathers the weights (stages 1
  // and 2). Returns the coefficient applied. Call only with a finite norm.
  double update(double lr, double grad_norm);

  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) { steps_ = steps; }
  const ShardLayout& shard() const { return shard_; }
  const AdamWOptions& options() const { return options_; }
  Backend& backend() const { return backend_; }
  // Elements of the flat buffer this rank's optimizer state covers: [range_begin, range_end).
  int64_t range_begin() const;
  int64_t range_end() const;

  // fp32 state over this rank's range, for checkpoints.
  TensorView master() const;
  TensorView exp_avg() const;
  TensorView exp_avg_sq() const;

  // Bytes this rank holds beyond the model's own buffers: optimizer state (master, m, v) and the
  // reduced-gradient shard buffers of stages 1 and 2.
  size_t optimizer_state_bytes() const;
  size_t gradient_shard_bytes() const;

 private:
  struct DecayRange {
    int64_t offset, length;  // within this rank's range
    bool decay;
  };
  TensorView state_view(int which) const;  // 0 master, 1 m, 2 v
  TensorView grads_for_update() const;     // the reduced gradient over this rank's range

  Backend& backend_;
  Communicator& comm_;
  Communicator& host_comm_;
  AdamWOptions options_;
  ShardLayout shard_;
  TensorView params_, grads_;
  std::vector<DecayRange> ranges_;
  int64_t range_elements_ = 0;
  std::unique_ptr<Buffer> state_;          // [3, range] f32
  std::unique_ptr<Buffer> reduced_shard_;  // stages 1, 2: [shard] storage dtype
  std::unique_ptr<Buffer> grad_shard_;     // stage 2: [shard] f32 accumulator
  int64_t steps_ = 0;
};

}  // namespace qwen3
