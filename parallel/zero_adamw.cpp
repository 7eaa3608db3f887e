#include "parallel/zero_adamw.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

const AdamWOptions& ZeroAdamW::checked(Backend& backend, Communicator& comm,
                                       Communicator& host_comm, const ParamLayout& layout,
                                       const TensorView& params, const TensorView& grads,
                                       const AdamWOptions& options) {
  const ShardLayout shard(layout.flat_size(), comm.size(), comm.rank());
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
  QWEN3_CHECK(params.numel() == shard.padded_size && grads.numel() == shard.padded_size,
              "ZeRO over {} ranks needs flat buffers of {} elements (the model's {} padded); got "
              "{} parameters and {} gradients. Build the model with flat_multiple {}.",
              comm.size(), shard.padded_size, layout.flat_size(), params.numel(), grads.numel(),
              ShardLayout::flat_multiple(comm.size()));
  QWEN3_CHECK(params.dtype == backend.storage_dtype(),
              "ZeRO's parameters must be in the backend's storage dtype {}, got {}",
              dtype_name(backend.storage_dtype()), dtype_name(params.dtype));
  QWEN3_CHECK(grads.dtype == DType::F32 || grads.dtype == backend.storage_dtype(),
              "ZeRO's gradients must be f32 or the backend's storage dtype {}, got {}",
              dtype_name(backend.storage_dtype()), dtype_name(grads.dtype));
  validate_decay_rule(options.decay, layout);
  return options;
}

ZeroAdamW::ZeroAdamW(Backend& backend, Communicator& comm, Communicator& host_comm,
                     const ParamLayout& layout, TensorView params, TensorView grads,
                     const AdamWOptions& options)
    : backend_(backend),
      comm_(comm),
      options_(checked(backend, comm, host_comm, layout, params, grads, options)),
      params_(params),
      reducer_(backend, comm, host_comm, ShardLayout(layout.flat_size(), comm.size(), comm.rank()),
               grads, options),
      adamw_(backend, layout, reducer_.range_begin(), reducer_.range_end(), options) {}

void ZeroAdamW::load_master_from_params() {
  adamw_.load_master_from_params(params_.rows(range_begin(), range_end() - range_begin()));
}

double ZeroAdamW::update(double lr, double grad_norm) {
  QWEN3_CHECK(std::isfinite(grad_norm), "update() with a non-finite gradient norm ({})", grad_norm);
  const double clip = reducer_.clip_coefficient(grad_norm);
  const TensorView own_params = params_.rows(range_begin(), range_end() - range_begin());
  adamw_.step(reducer_.reduced(), lr, clip, own_params);
  if (options_.zero_stage >= 1) comm_.all_gather(own_params, params_, backend_.stream());
  return clip;
}

}  // namespace qwen3
