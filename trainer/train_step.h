#pragma once
// One data-parallel optimizer step: forward and backward over this rank's micro-batches, the
// gradient reduction and the sharded AdamW update. For the step, the model's gradients-final hook
// feeds the optimizer, so that the reduction overlaps the backward pass (zero_adamw.h).
//
// The loss is the mean over every scored token of the global batch (all ranks, all micro-batches),
// as one large batch on one rank would give: ranks first sum their scored-token counts, and each
// backward pass is scaled by 1 / that total. Ignored labels therefore weigh nothing, however they
// fall across ranks.
#include <cstdint>
#include <vector>

#include "core/model/qwen3_model.h"
#include "parallel/communicator.h"
#include "parallel/zero_adamw.h"

namespace qwen3 {

struct StepResult {
  double loss = 0.0;       // mean over the global batch's scored tokens, in nats
  int64_t tokens = 0;      // scored tokens in the global batch
  double grad_norm = 0.0;  // global L2 norm before clipping
  double clip_coef = 1.0;  // factor applied to the gradient
  bool skipped = false;    // no update: loss or norm not finite, or nothing was scored
};

// `micro_batches`: this rank's share of the global batch, any number of micro-batches (the same
// number on every rank). `host_comm`: the scalar reductions (token counts, loss sums).
StepResult train_step(Qwen3Model& model, ZeroAdamW& optimizer, Communicator& host_comm,
                      const std::vector<Batch>& micro_batches, double lr);

}  // namespace qwen3
