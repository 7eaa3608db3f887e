#include "parallel/gradient_reducer.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

GradientReducer::GradientReducer(Backend& backend, Communicator& comm, Communicator& host_comm,
                                 const ShardLayout& shard, TensorView grads,
                                 const GradientReducerOptions& options)
    : backend_(backend),
      comm_(comm),
      host_comm_(host_comm),
      options_(options),
      shard_(shard),
      grads_(grads) {
  QWEN3_CHECK(options.zero_stage >= 0 && options.zero_stage <= 2,
              "zero_stage must be 0, 1 or 2, got {}", options.zero_stage);
  QWEN3_CHECK(options.grad_clip >= 0, "grad_clip must be non-negative (0: off), got {}",
              options.grad_clip);
  QWEN3_CHECK(options.grad_bucket_bytes > 0, "grad_bucket_bytes must be positive, got {}",
              options.grad_bucket_bytes);
  QWEN3_CHECK(grads.numel() == shard.padded_size,
              "the gradient reducer needs a flat gradient buffer of {} elements, got {}",
              shard.padded_size, grads.numel());
  QWEN3_CHECK(grads.dtype == DType::F32 || grads.dtype == backend.storage_dtype(),
              "ZeRO's gradients must be f32 or the backend's storage dtype {}, got {}",
              dtype_name(backend.storage_dtype()), dtype_name(grads.dtype));
  final_from_ = launched_from_ = shard_.padded_size;
  if (options.zero_stage >= 1)
    reduced_shard_ =
        backend.allocate(static_cast<size_t>(shard_.shard_size) * dtype_size(grads.dtype));
  if (options.zero_stage == 2) {
    grad_shard_ = backend.allocate(static_cast<size_t>(shard_.shard_size) * sizeof(float));
    backend.fill_zero(grad_shard_->view(DType::F32, {shard_.shard_size}));
  }
}

int64_t GradientReducer::range_begin() const {
  return options_.zero_stage == 0 ? 0 : shard_.begin();
}

int64_t GradientReducer::range_end() const {
  return options_.zero_stage == 0 ? shard_.padded_size : shard_.end();
}

void GradientReducer::zero_grad(int64_t micro_batches) {
  QWEN3_CHECK(micro_batches >= 1, "zero_grad: a step needs at least one micro-batch, got {}",
              micro_batches);
  backend_.fill_zero(grads_);
  if (grad_shard_) backend_.fill_zero(grad_shard_->view(DType::F32, {shard_.shard_size}));
  micro_batches_ = micro_batches;
  micro_batches_done_ = 0;
  final_from_ = launched_from_ = shard_.padded_size;
}

TensorView GradientReducer::reduced_shard() const {
  return reduced_shard_->view(grads_.dtype, {shard_.shard_size});
}

bool GradientReducer::reduces_running_backward() const {
  if (micro_batches_done_ >= micro_batches_) return false;  // outside a step
  return options_.zero_stage == 2 || micro_batches_done_ + 1 == micro_batches_;
}

void GradientReducer::gradients_final(int64_t final_from) {
  if (!options_.overlap_grad_reduce || !reduces_running_backward()) return;
  QWEN3_CHECK(final_from >= 0 && final_from <= final_from_,
              "gradients_final({}): a backward announces ever lower offsets within [0, {}], and "
              "{} was announced already",
              final_from, shard_.padded_size, final_from_);
  final_from_ = final_from;
  const int64_t ready_bytes =
      (launched_from_ - final_from_) * static_cast<int64_t>(dtype_size(grads_.dtype));
  if (ready_bytes > 0 && (ready_bytes >= options_.grad_bucket_bytes || final_from_ == 0))
    launch_bucket(final_from_, launched_from_);
}

void GradientReducer::launch_bucket(int64_t begin, int64_t end) {
  if (launched_from_ == shard_.padded_size) buckets_.clear();  // a new reduction's first bucket
  // The backward's ops that wrote [begin, end) are queued on the compute stream; the collective
  // starts after them, while the compute stream goes on with the layers below.
  backend_.side_waits_for_main();
  void* side = backend_.side_stream();
  if (options_.zero_stage == 0)
    comm_.all_reduce(grads_.rows(begin, end - begin), ReduceOp::Sum, side);
  else
    comm_.reduce_scatter_window(grads_, reduced_shard(), begin, end - begin, ReduceOp::Sum, side);
  buckets_.push_back({begin, end});
  launched_from_ = begin;
}

void GradientReducer::finish_reduction() {
  if (launched_from_ < shard_.padded_size) {
    // The backward has ended, so what it did not announce is final too.
    if (launched_from_ > 0) launch_bucket(0, launched_from_);
    backend_.main_waits_for_side();
  } else {
    // Collectives on device buffers are queued on the compute stream, behind the backward pass
    // that wrote the gradients (host communicators ignore the stream).
    if (options_.zero_stage == 0)
      comm_.all_reduce(grads_, ReduceOp::Sum, backend_.stream());
    else
      comm_.reduce_scatter(grads_, reduced_shard(), ReduceOp::Sum, backend_.stream());
    buckets_.clear();
  }
  final_from_ = launched_from_ = shard_.padded_size;
}

void GradientReducer::micro_batch_done() {
  QWEN3_CHECK(micro_batches_done_ < micro_batches_,
              "micro_batch_done(): the step has {} micro-batches (zero_grad's count), all done",
              micro_batches_);
  if (options_.zero_stage == 2) finish_reduction();
  micro_batches_done_ += 1;
  if (options_.zero_stage != 2) return;
  backend_.accumulate(reduced_shard(), grad_shard_->view(DType::F32, {shard_.shard_size}));
  backend_.fill_zero(grads_);
}

TensorView GradientReducer::reduced() const {
  switch (options_.zero_stage) {
    case 0:
      return grads_;
    case 1:
      return reduced_shard();
    default:
      return grad_shard_->view(DType::F32, {shard_.shard_size});
  }
}

double GradientReducer::reduce_gradients() {
  QWEN3_CHECK(micro_batches_done_ == micro_batches_,
              "reduce_gradients() after {} of the step's {} micro-batches", micro_batches_done_,
              micro_batches_);
  if (options_.zero_stage != 2) finish_reduction();
  // Each rank sums the squares of its own shard; at stage 0 too, so that every rank adds the same
  // partial sums in the same order and agrees on the norm to the last bit.
  const TensorView grads = reduced();
  const TensorView own =
      options_.zero_stage == 0 ? grads.rows(shard_.begin(), shard_.shard_size) : grads;
  const double sum = host_comm_.all_reduce_value(backend_.sum_squares(own));
  return std::sqrt(sum);
}

double GradientReducer::clip_coefficient(double grad_norm) const {
  // PyTorch's clip_grad_norm_: the 1e-6 keeps the division finite for a zero gradient.
  return options_.grad_clip > 0 ? std::min(1.0, options_.grad_clip / (grad_norm + 1e-6)) : 1.0;
}

size_t GradientReducer::gradient_shard_bytes() const {
  return (reduced_shard_ ? reduced_shard_->bytes() : 0) + (grad_shard_ ? grad_shard_->bytes() : 0);
}

}  // namespace qwen3
