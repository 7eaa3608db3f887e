#pragma once
// ZeRO-sharded AdamW: a GradientReducer (stages 0-2, buckets during the backward pass, the norm
// and clipping; parallel/gradient_reducer.h) feeding the AdamW update rule (parallel/adamw.h) over
// this rank's range, whose new weights are then all-gathered (stages 1 and 2). The optimizer state
// is fp32 on every backend: master weights, first and second moments over the rank's range (the
// shard; the whole buffer at stage 0). After an update the master weights are copied (converted
// to the storage dtype) into the model's parameters.
//
// A step, with the trainer doing forward and backward:
//   zero_grad(M); for each of the M micro-batches { forward; backward; micro_batch_done(); }
//   norm = reduce_gradients(); if (finite(norm)) update(lr, norm);
#include <cstdint>
#include <memory>
#include <vector>

#include "core/model/param_layout.h"
#include "core/ops/backend.h"
#include "parallel/adamw.h"
#include "parallel/communicator.h"
#include "parallel/decay_rule.h"
#include "parallel/gradient_reducer.h"
#include "parallel/shard_layout.h"

namespace qwen3 {

// What a run's stage sets for ZeRO-sharded AdamW: the reducer's options and AdamW's
// hyperparameters, each declared (with its default) in its own struct.
struct AdamWOptions : GradientReducerOptions, AdamWHyperparameters {};

class ZeroAdamW {
 public:
  // `params` and `grads`: the model's padded flat buffers [padded_size], padded_size a multiple
  // of ShardLayout::flat_multiple(comm.size()); params in the storage dtype, grads in F32 or it.
  // `comm` carries the buffers (MPI on CPU, NCCL on GPU); `host_comm` the scalar reductions (the
  // norm). They may be the same communicator.
  ZeroAdamW(Backend& backend, Communicator& comm, Communicator& host_comm,
            const ParamLayout& layout, TensorView params, TensorView grads,
            const AdamWOptions& options);

  // Copies this rank's range of the parameters into the fp32 master weights. Call once the
  // weights are initialised or loaded, before the first update.
  void load_master_from_params();

  // The reducer's step, as GradientReducer describes it.
  void zero_grad(int64_t micro_batches) { reducer_.zero_grad(micro_batches); }
  void gradients_final(int64_t final_from) { reducer_.gradients_final(final_from); }
  void micro_batch_done() { reducer_.micro_batch_done(); }
  double reduce_gradients() { return reducer_.reduce_gradients(); }
  // Clips to options.grad_clip with PyTorch's coefficient min(1, clip / (norm + 1e-6)), runs
  // AdamW on this rank's range with learning rate `lr`, and all-gathers the weights (stages 1
  // and 2). Returns the coefficient applied. Call only with a finite norm.
  double update(double lr, double grad_norm);

  int64_t steps_taken() const { return adamw_.steps_taken(); }
  void set_steps_taken(int64_t steps) { adamw_.set_steps_taken(steps); }
  const ShardLayout& shard() const { return reducer_.shard(); }
  const AdamWOptions& options() const { return options_; }
  Backend& backend() const { return backend_; }
  // Elements of the flat buffer this rank's optimizer state covers: [range_begin, range_end).
  int64_t range_begin() const { return reducer_.range_begin(); }
  int64_t range_end() const { return reducer_.range_end(); }
  // The update rule and its named state over the range, for checkpoints.
  const Optimizer& update_rule() const { return adamw_; }
  const GradientReducer& reducer() const { return reducer_; }

  using Bucket = GradientReducer::Bucket;
  const std::vector<Bucket>& last_buckets() const { return reducer_.last_buckets(); }

  // fp32 state over this rank's range.
  TensorView master() const { return adamw_.master(); }
  TensorView exp_avg() const { return adamw_.exp_avg(); }
  TensorView exp_avg_sq() const { return adamw_.exp_avg_sq(); }

  // Bytes this rank holds beyond the model's own buffers: optimizer state (master, m, v) and the
  // reduced-gradient shard buffers of stages 1 and 2.
  size_t optimizer_state_bytes() const { return adamw_.state_bytes(); }
  size_t gradient_shard_bytes() const { return reducer_.gradient_shard_bytes(); }

 private:
  // The checks of what spans the reducer and the update rule, before either is built: returns
  // `options`.
  static const AdamWOptions& checked(Backend& backend, Communicator& comm, Communicator& host_comm,
                                     const ParamLayout& layout, const TensorView& params,
                                     const TensorView& grads, const AdamWOptions& options);

  Backend& backend_;
  Communicator& comm_;
  AdamWOptions options_;
  TensorView params_;
  GradientReducer reducer_;
  AdamW adamw_;
};

}  // namespace qwen3
