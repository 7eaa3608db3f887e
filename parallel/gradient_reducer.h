#pragma once
// The gradients' way from the backward pass to the update rule, over ZeRO shards of the flat
// gradient buffer; it knows no update rule (parallel/optimizer.h).
//
//   stage 0  gradients all-reduced once per step; the update covers the whole buffer.
//   stage 1  gradients accumulate locally over micro-batches and are reduce-scattered once per
//            step; the update covers this rank's shard.
//   stage 2  each micro-batch's gradient is reduce-scattered during its backward (or when it
//            ends) and accumulated into an fp32 shard, so between micro-batches a rank keeps only
//            its shard of the reduced gradient; otherwise as stage 1.
//
// Gradients are reduced in the dtype of the model's gradient buffer (fp32 by default, or the
// storage dtype; Qwen3Model::set_grad_dtype), and the reduced shard of stages 1 and 2 has it too.
//
// Overlap (overlap_grad_reduce). With gradients_final() wired to the model's gradients-final hook,
// the backwards whose gradients are reduced (every micro-batch at stage 2, the last at stages 0
// and 1) reduce them in buckets while they run: once a bucket's worth has become final since the
// last bucket, or when everything has, the newly final range [lo, hi) of the flat buffer goes out
// on the backend's side stream, behind an event on the compute stream: stage 0 all-reduces it in
// place; stages 1 and 2 reduce each of its pieces to the rank whose shard holds it
// (Communicator::reduce_scatter_window), so the shards stay the contiguous ones of ShardLayout and
// the buckets may straddle them. Buckets tile [0, padded_size), alignment gaps and the zero
// padding included, so they reduce what the one collective would (on more than two ranks the
// collectives may add the ranks' values in another order). Before the compute stream reads the
// reduced gradients or writes the buffer again (stage 2's accumulation, the norm), it waits on an
// event from the side stream. No host synchronisation orders the streams; the host first waits for
// the reduction where it reads the norm's sum of squares. Without the hook's calls the reduction
// is the one collective after the backward, on the compute stream, as without overlap.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/ops/backend.h"
#include "parallel/communicator.h"
#include "parallel/shard_layout.h"

namespace qwen3 {

struct GradientReducerOptions {
  int zero_stage = 1;
  bool overlap_grad_reduce = true;
  // A bucket goes out once this many bytes (of the gradient dtype) have become final since the
  // previous one. 25 MiB, PyTorch DDP's default, makes one bucket per Qwen3-0.6B layer (15.7M
  // parameters, 63 MB in fp32, 31 MB in bf16); buckets start and end where the model announces, at
  // layers.
  int64_t grad_bucket_bytes = int64_t{25} << 20;
  // Global gradient-norm clipping threshold; 0 turns clipping off. 1.0 as in GPT-3 and LLaMA.
  double grad_clip = 1.0;
};

class GradientReducer {
 public:
  // `grads`: the model's padded flat gradient buffer [shard.padded_size], F32 or the storage
  // dtype. `comm` carries it (MPI on CPU, NCCL on GPU); `host_comm` the norm's scalar.
  GradientReducer(Backend& backend, Communicator& comm, Communicator& host_comm,
                  const ShardLayout& shard, TensorView grads,
                  const GradientReducerOptions& options);

  // Zeroes the gradients and, at stage 2, the reduced-gradient shard, and starts a step of
  // `micro_batches` micro-batches on this rank (the last one's backward is reduced at stages 0
  // and 1).
  void zero_grad(int64_t micro_batches);
  // The model's gradients-final hook: gradients at flat index >= final_from are final for the
  // running backward. Queues buckets of them; ignored without overlap_grad_reduce and in backwards
  // that are not reduced.
  void gradients_final(int64_t final_from);
  // After each micro-batch's backward. Stage 2 finishes this micro-batch's reduction, adds it to
  // the fp32 shard and zeroes the working gradients; stages 0 and 1 keep accumulating locally.
  void micro_batch_done();
  // Finishes the reduction and returns the global L2 norm of the summed gradient, before
  // clipping; the same value on every rank. After the step's micro_batch_done() calls.
  double reduce_gradients();
  // PyTorch's clip_grad_norm_ coefficient min(1, clip / (norm + 1e-6)); 1 with clipping off.
  double clip_coefficient(double grad_norm) const;

  // The reduced gradient over [range_begin, range_end): what the update rule reads.
  TensorView reduced() const;
  // Elements of the flat buffer the update covers: the shard, or the whole buffer at stage 0.
  int64_t range_begin() const;
  int64_t range_end() const;
  const ShardLayout& shard() const { return shard_; }
  const GradientReducerOptions& options() const { return options_; }

  // A range [begin, end) of the flat buffer reduced as one bucket.
  struct Bucket {
    int64_t begin, end;
  };
  // The buckets of the most recent reduction, in the order they went out (from the end of the
  // buffer down); empty when it went out as one collective.
  const std::vector<Bucket>& last_buckets() const { return buckets_; }
  // The reduced-gradient shard buffers of stages 1 and 2.
  size_t gradient_shard_bytes() const;

 private:
  TensorView reduced_shard() const;  // stages 1, 2: [shard] in the gradients' dtype
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
  GradientReducerOptions options_;
  ShardLayout shard_;
  TensorView grads_;
  std::unique_ptr<Buffer> reduced_shard_;  // stages 1, 2: [shard] in the gradients' dtype
  std::unique_ptr<Buffer> grad_shard_;     // stage 2: [shard] f32 accumulator
  // The step's micro-batches as zero_grad was told, and how many have ended.
  int64_t micro_batches_ = 0, micro_batches_done_ = 0;
  // In the running backward: the lowest index announced final, and the lowest index whose
  // reduction is queued; padded_size for none.
  int64_t final_from_ = 0, launched_from_ = 0;
  std::vector<Bucket> buckets_;
};

}  // namespace qwen3
