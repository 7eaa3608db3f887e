#include "parallel/zero_adamw.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

// What only the composition can check: the two communicators agree, and both flat buffers have
// the padded size. The reducer checks its options and the gradients' dtype, AdamW its
// hyperparameters and the decay rule.
const AdamWOptions& ZeroAdamW::checked(Backend& backend, Communicator& comm,
                                       Communicator& host_comm, const ParamLayout& layout,
                                       const TensorView& params, const TensorView& grads,
                                       const AdamWOptions& options) {
  const ShardLayout shard(layout.flat_size(), comm.size(), comm.rank());
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
