#pragma once
// AdamW over ZeRO shards of the flat buffers.
//
//   stage 0  gradients all-reduced once per step; every rank holds the whole optimizer state.
//   stage 1  gradients accumulate locally over micro-batches and are reduce-scattered once per
//            step; each rank holds the optimizer state of its shard only; the updated shards
//            are all-gathered.
//   stage 2  each micro-batch's gradient is reduce-scattered during its backward (or when it
//            ends) and accumulated into an fp32 shard, so between micro-batches a rank keeps only
//            its shard of the reduced gradient; otherwise as stage 1.
//
// The optimizer state is fp32 on every backend: master weights, first and second moments, one
// each per element of the rank's range (the shard; the whole buffer at stage 0). After an update
// the master weights are copied (converted to the storage dtype) into the model's parameters.
// Gradients are reduced in the dtype of the model's gradient buffer (fp32 by default, or the
// storage dtype; Qwen3Model::set_grad_dtype), and the reduced shard of stages 1 and 2 has it too.
//
// A step, with the trainer doing forward and backward:
//   zero_grad(M); for each of the M micro-batches { forward; backward; micro_batch_done(); }
//   norm = reduce_gradients(); if (finite(norm)) update(lr, norm);
//
// Overlap (options.overlap_grad_reduce). With gradients_final() wired to the model's
// gradients-final hook, the backwards whose gradients are reduced (every micro-batch at stage 2,
// the last at stages 0 and 1) reduce them in buckets while they run: once a bucket's worth has
// become final since the last bucket, or when everything has, the newly final range [lo, hi) of
// the flat buffer goes out on the backend's side stream, behind an event on the compute stream:
// stage 0 all-reduces it in place; stages 1 and 2 reduce each of its pieces to the rank whose
// shard holds it (Communicator::reduce_scatter_window), so the shards stay the contiguous ones of
// ShardLayout and the buckets may straddle them. Buckets tile [0, padded_size), alignment gaps
// and the zero padding included, so they reduce what the one collective would (on more than two
// ranks the collectives may add the ranks' values in another order). Before the compute stream
// reads the reduced gradients or writes the buffer again (stage 2's accumulation, the norm), it
// waits on an event from the side stream. No host synchronisation orders the streams; the host
// first waits for the reduction where it reads the norm's sum of squares, as it always did.
// Without the hook's calls the reduction is the one collective after the backward, on the compute
// stream, as without overlap.
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
  // Reduce gradients in buckets during the backward pass (see above) rather than in one
  // collective after it.
  bool overlap_grad_reduce = true;
  // A bucket goes out once this many bytes (of the gradient dtype) have become final since the
  // previous one. 25 MiB, PyTorch DDP's default, makes one bucket per Qwen3-0.6B layer (15.7M
  // parameters, 63 MB in fp32, 31 MB in bf16); buckets start and end where the model announces, at
  // layers.
  int64_t grad_bucket_bytes = int64_t{25} << 20;
};

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

  // Zeroes the model's gradients and, at stage 2, the reduced-gradient shard, and starts a step of
  // `micro_batches` micro-batches on this rank (the last one's backward is reduced at stages 0
  // and 1).
  void zero_grad(int64_t micro_batches);
  // The model's gradients-final hook (Qwen3Model::set_gradients_final_hook): gradients at flat
  // index >= final_from are final for the running backward. Queues buckets of them as described
  // above; ignored without overlap_grad_reduce and in backwards that are not reduced.
  void gradients_final(int64_t final_from);
  // After each micro-batch's backward. Stage 2 finishes this micro-batch's reduction (bucketed,
  // or one reduce-scatter now), adds the result to the fp32 shard and zeroes the working
  // gradients; stages 0 and 1 keep accumulating locally.
  void micro_batch_done();
  // Finishes the reduction (stage 0 all-reduce, stage 1 reduce-scatter; bucketed or whole) and
  // returns the global L2 norm of the summed gradient, before clipping; the same value on every
  // rank. Call after the step's micro_batch_done() calls, as many as zero_grad was told.
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

  // A range [begin, end) of the flat buffer reduced as one bucket.
  struct Bucket {
    int64_t begin, end;
  };
  // The buckets of the most recent reduction, in the order they went out (from the end of the
  // buffer down); empty when it went out as one collective.
  const std::vector<Bucket>& last_buckets() const { return buckets_; }

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
  TensorView reduced_shard() const;        // stages 1, 2: [shard] in the gradients' dtype
  // Whether the running backward's gradients are reduced: every micro-batch's at stage 2, the
  // step's last at stages 0 and 1.
  bool reduces_running_backward() const;
  // Queues the reduction of [begin, end) on the side stream, behind the compute stream's work.
  void launch_bucket(int64_t begin, int64_t end);
  // Completes this backward's reduction: the buckets' remainder and the compute stream's wait
  // for them, or else the one collective on the compute stream.
  void finish_reduction();

  Backend& backend_;
  Communicator& comm_;
  Communicator& host_comm_;
  AdamWOptions options_;
  ShardLayout shard_;
  TensorView params_, grads_;
  std::vector<DecayRange> ranges_;
  int64_t range_elements_ = 0;
  std::unique_ptr<Buffer> state_;          // [3, range] f32
  std::unique_ptr<Buffer> reduced_shard_;  // stages 1, 2: [shard] in the gradients' dtype
  std::unique_ptr<Buffer> grad_shard_;     // stage 2: [shard] f32 accumulator
  int64_t steps_ = 0;
  // The step's micro-batches as zero_grad was told, and how many have ended.
  int64_t micro_batches_ = 0, micro_batches_done_ = 0;
  // In the running backward: the lowest index announced final, and the lowest index whose
  // reduction is queued; padded_size for none.
  int64_t final_from_ = 0, launched_from_ = 0;
  std::vector<Bucket> buckets_;
};

}  // namespace qwen3
