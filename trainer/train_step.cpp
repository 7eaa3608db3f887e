#include "trainer/train_step.h"

#include <cmath>

#include "core/util/error.h"

namespace qwen3 {

namespace {

// Routes the model's gradients-final calls to the optimizer for one step (so that the reduction
// overlaps the backward pass), and unhooks the model however the step ends: the optimizer may not
// outlive it.
class GradientsFinalWiring {
 public:
  GradientsFinalWiring(Qwen3Model& model, ZeroAdamW& optimizer) : model_(model) {
    model.set_gradients_final_hook(
        [&optimizer](int64_t final_from) { optimizer.gradients_final(final_from); });
  }
  ~GradientsFinalWiring() { model_.set_gradients_final_hook(nullptr); }
  GradientsFinalWiring(const GradientsFinalWiring&) = delete;
  GradientsFinalWiring& operator=(const GradientsFinalWiring&) = delete;

 private:
  Qwen3Model& model_;
};

}  // namespace

StepResult train_step(Qwen3Model& model, ZeroAdamW& optimizer, Communicator& host_comm,
                      const std::vector<Batch>& micro_batches, double lr) {
  QWEN3_CHECK(!micro_batches.empty(), "a training step needs at least one micro-batch");
  int64_t local_tokens = 0;
  for (const Batch& b : micro_batches)
    local_tokens += count_scored_tokens(b);
  StepResult result;
  result.tokens = host_comm.all_reduce_value(local_tokens);

  const GradientsFinalWiring wiring(model, optimizer);
  optimizer.zero_grad(static_cast<int64_t>(micro_batches.size()));
  // With nothing scored anywhere the gradient is zero; the passes still run so that every rank
  // takes part in the same collectives.
  const float scale = result.tokens > 0 ? static_cast<float>(1.0 / double(result.tokens)) : 0.0f;
  // The micro-batches' losses add up on the device; the host reads them once, after the norm
  // (which it must wait for anyway), so nothing inside the loop waits for the GPU. The scale is
  // known before the forward, which therefore runs the LM head's backward fused with the loss.
  for (const Batch& b : micro_batches) {
    model.forward_queued(b, scale);
    model.backward(scale);
    optimizer.micro_batch_done();
  }
  result.grad_norm = optimizer.reduce_gradients();
  const double loss_sum = host_comm.all_reduce_value(model.take_loss_total());
  result.loss = result.tokens > 0 ? loss_sum / double(result.tokens) : 0.0;

  result.skipped =
      result.tokens == 0 || !std::isfinite(result.grad_norm) || !std::isfinite(result.loss);
  if (!result.skipped) result.clip_coef = optimizer.update(lr, result.grad_norm);
  return result;
}

}  // namespace qwen3
