#pragma once
// AdamW (decoupled weight decay, PyTorch's order of operations) as an Optimizer: master weights and
// both moments in fp32 over the rank's range, weight decay per tensor by the DecayRule.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/model/param_layout.h"
#include "core/ops/backend.h"
#include "parallel/decay_rule.h"
#include "parallel/optimizer.h"

namespace qwen3 {

struct AdamWHyperparameters {
  // β2 = 0.95 rather than PyTorch's 0.999: the usual choice for LLM pre-training (GPT-3, LLaMA,
  // OLMo), where v must follow gradient scales that change over thousands of steps.
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  DecayRule decay;
};

class AdamW final : public Optimizer {
 public:
  // The range [begin, end) of `layout`'s flat buffer (a ZeRO shard, or all of it).
  AdamW(Backend& backend, const ParamLayout& layout, int64_t begin, int64_t end,
        const AdamWHyperparameters& hyper);

  const char* name() const override { return "adamw"; }
  std::vector<OptimizerStateTensor> state() const override;
  void load_master_from_params(const TensorView& params) override;
  void step(const TensorView& grads, double lr, double grad_scale,
            const TensorView& params) override;

  TensorView master() const { return state_view(0); }
  TensorView exp_avg() const { return state_view(1); }
  TensorView exp_avg_sq() const { return state_view(2); }
  size_t state_bytes() const { return state_->bytes(); }

 private:
  // A tensor's part inside the range, with its decay.
  struct DecayRange {
    int64_t offset, length;  // within the range
    bool decay;
  };
  TensorView state_view(int which) const;  // 0 master, 1 m, 2 v

  Backend& backend_;
  AdamWHyperparameters hyper_;
  int64_t elements_;
  std::vector<DecayRange> ranges_;
  std::unique_ptr<Buffer> state_;  // [3, range] f32
};

}  // namespace qwen3
