#include "parallel/zero_adamw.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

ZeroAdamW::ZeroAdamW(Backend& backend, Communicator& comm, Communicator& host_comm,
                     const ParamLayout& layout, TensorView params, TensorView grads,
                     const AdamWOptions& options)
    : backend_(backend),
      comm_(comm),
      host_comm_(host_comm),
      options_(options),
      shard_(layout.flat_size(), comm.size(), comm.rank()),
      params_(params),
      grads_(grads) {
  QWEN3_CHECK(options.zero_stage >= 0 && options.zero_stage <= 2,
              "zero_stage must be 0, 1 or 2, got {}", options.zero_stage);
  QWEN3_CHECK(options.beta1 >= 0 && options.beta1 < 1, "beta1 must lie in [0, 1), got {}",
              options.beta1);
  QWEN3_CHECK(options.beta2 >= 0 && options.beta2 < 1, "beta2 must lie in [0, 1), got {}",
              options.beta2);
  QWEN3_CHECK(options.eps > 0, "eps must be positive, got {}", options.eps);
  QWEN3_CHECK(options.weight_decay >= 0, "weight_decay must be non-negative, got {}",
              options.weight_decay);
  QWEN3_CHECK(options.grad_clip >= 0, "grad_clip must be non-negative (0: off), got {}",
              options.grad_clip);
  QWEN3_CHECK(options.grad_bucket_bytes > 0, "grad_bucket_bytes must be positive, got {}",
              options.grad_bucket_bytes);
  QWEN3_CHECK(host_comm.size() == comm.size() && host_comm.rank() == comm.rank(),
              "the host communicator (rank {} of {}) must match the buffer communicator (rank {} "
              "of {})",
              host_comm.rank(), host_comm.size(), comm.rank(), comm.size());
  QWEN3_CHECK(params.numel() == shard_.padded_size && grads.numel() == shard_.padded_size,
              "ZeRO over {} ranks needs flat buffers of {} elements (the model's {} padded); got "
              "{} parameters and {} gradients. Build the model with flat_multiple {}.",
              comm.size(), shard_.padded_size, layout.flat_size(), params.numel(), grads.numel(),
              ShardLayout::flat_multiple(comm.size()));
  QWEN3_CHECK(params.dtype == backend.storage_dtype(),
              "ZeRO's parameters must be in the backend's storage dtype {}, got {}",
              dtype_name(backend.storage_dtype()), dtype_name(params.dtype));
  QWEN3_CHECK(grads.dtype == DType::F32 || grads.dtype == backend.storage_dtype(),
              "ZeRO's gradients must be f32 or the backend's storage dtype {}, got {}",
              dtype_name(backend.storage_dtype()), dtype_name(grads.dtype));
  validate_decay_rule(options.decay, layout);
  final_from_ = launched_from_ = shard_.padded_size;

  // Decay ranges: every tensor's part inside this rank's range, with its rule.
  const int64_t begin = range_begin(), end = range_end();
  range_elements_ = end - begin;
  for (const ParamEntry& e : layout.entries()) {
    const int64_t lo = std::max(begin, e.offset), hi = std::min(end, e.offset + e.numel());
    if (lo < hi) ranges_.push_back({lo - begin, hi - lo, decays(options.decay, e)});
  }

  const size_t range_bytes = static_cast<size_t>(range_elements_) * sizeof(float);
  state_ = backend.allocate(3 * range_bytes);
  backend.fill_zero(state_->view(DType::F32, {3 * range_elements_}));
  if (options.zero_stage >= 1) {
    reduced_shard_ =
        backend.allocate(static_cast<size_t>(shard_.shard_size) * dtype_size(grads.dtype));
  }
  if (options.zero_stage == 2) {
    grad_shard_ = backend.allocate(static_cast<size_t>(shard_.shard_size) * sizeof(float));
    backend.fill_zero(grad_shard_->view(DType::F32, {shard_.shard_size}));
  }
}

int64_t ZeroAdamW::range_begin() const {
  return options_.zero_stage == 0 ? 0 : shard_.begin();
}

int64_t ZeroAdamW::range_end() const {
  return options_.zero_stage == 0 ? shard_.padded_size : shard_.end();
}

TensorView ZeroAdamW::state_view(int which) const {
  return state_->view(DType::F32, {range_elements_},
                      static_cast<size_t>(which * range_elements_) * sizeof(float));
}

TensorView ZeroAdamW::master() const {
  return state_view(0);
}
TensorView ZeroAdamW::exp_avg() const {
  return state_view(1);
}
TensorView ZeroAdamW::exp_avg_sq() const {
  return state_view(2);
}

void ZeroAdamW::load_master_from_params() {
  backend_.copy(params_.rows(range_begin(), range_elements_), master());
}

void ZeroAdamW::zero_grad(int64_t micro_batches) {
  QWEN3_CHECK(micro_batches >= 1, "zero_grad: a step needs at least one micro-batch, got {}",
              micro_batches);
  backend_.fill_zero(grads_);
  if (grad_shard_) backend_.fill_zero(grad_shard_->view(DType::F32, {shard_.shard_size}));
  micro_batches_ = micro_batches;
  micro_batches_done_ = 0;
  final_from_ = launched_from_ = shard_.padded_size;
}

TensorView ZeroAdamW::reduced_shard() const {
  return reduced_shard_->view(grads_.dtype, {shard_.shard_size});
}

bool ZeroAdamW::reduces_running_backward() const {
  if (micro_batches_done_ >= micro_batches_) return false;  // outside a step
  return options_.zero_stage == 2 || micro_batches_done_ + 1 == micro_batches_;
}

void ZeroAdamW::gradients_final(int64_t final_from) {
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

void ZeroAdamW::launch_bucket(int64_t begin, int64_t end) {
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

void ZeroAdamW::finish_reduction() {
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

void ZeroAdamW::micro_batch_done() {
  QWEN3_CHECK(micro_batches_done_ < micro_batches_,
              "micro_batch_done(): the step has {} micro-batches (zero_grad's count), all done",
              micro_batches_);
  if (options_.zero_stage == 2) finish_reduction();
  micro_batches_done_ += 1;
  if (options_.zero_stage != 2) return;
  backend_.accumulate(reduced_shard(), grad_shard_->view(DType::F32, {shard_.shard_size}));
  backend_.fill_zero(grads_);
}

TensorView ZeroAdamW::grads_for_update() const {
  switch (options_.zero_stage) {
    case 0:
      return grads_;
    case 1:
      return reduced_shard();
    default:
      return grad_shard_->view(DType::F32, {shard_.shard_size});
  }
}

double ZeroAdamW::reduce_gradients() {
  QWEN3_CHECK(micro_batches_done_ == micro_batches_,
              "reduce_gradients() after {} of the step's {} micro-batches", micro_batches_done_,
              micro_batches_);
  if (options_.zero_stage != 2) finish_reduction();
  // Each rank sums the squares of its own shard; at stage 0 too, so that every rank adds the same
  // partial sums in the same order and agrees on the norm to the last bit.
  const TensorView grads = grads_for_update();
  const TensorView own =
      options_.zero_stage == 0 ? grads.rows(shard_.begin(), shard_.shard_size) : grads;
  const double sum = host_comm_.all_reduce_value(backend_.sum_squares(own));
  return std::sqrt(sum);
}

double ZeroAdamW::update(double lr, double grad_norm) {
  QWEN3_CHECK(std::isfinite(grad_norm), "update() with a non-finite gradient norm ({})", grad_norm);
  // PyTorch's clip_grad_norm_: the 1e-6 keeps the division finite for a zero gradient.
  const double clip =
      options_.grad_clip > 0 ? std::min(1.0, options_.grad_clip / (grad_norm + 1e-6)) : 1.0;
  steps_ += 1;
  AdamWHyper hyper;
  hyper.lr = lr;
  hyper.beta1 = options_.beta1;
  hyper.beta2 = options_.beta2;
  hyper.eps = options_.eps;
  hyper.grad_scale = clip;
  hyper.step = steps_;
  const TensorView grads = grads_for_update();
  const TensorView master_all = master(), m_all = exp_avg(), v_all = exp_avg_sq();
  for (const DecayRange& r : ranges_) {
    hyper.weight_decay = r.decay ? options_.weight_decay : 0.0;
    backend_.adamw_update(master_all.rows(r.offset, r.length), grads.rows(r.offset, r.length),
                          m_all.rows(r.offset, r.length), v_all.rows(r.offset, r.length), hyper);
  }
  const TensorView own_params = params_.rows(range_begin(), range_elements_);
  backend_.copy(master_all, own_params);
  if (options_.zero_stage >= 1) comm_.all_gather(own_params, params_, backend_.stream());
  return clip;
}

size_t ZeroAdamW::optimizer_state_bytes() const {
  return state_->bytes();
}

size_t ZeroAdamW::gradient_shard_bytes() const {
  return (reduced_shard_ ? reduced_shard_->bytes() : 0) + (grad_shard_ ? grad_shard_->bytes() : 0);
}

}  // namespace qwen3
