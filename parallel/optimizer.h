#pragma once
// An update rule over this rank's range of the flat parameter buffer. The GradientReducer hands it
// the reduced gradient over that range; the rule keeps its state there (fp32, one value per
// element of the range, as named tensors that checkpoints write and any number of ranks read back
// by range) and writes the new weights into the range's parameters. It knows nothing of ranks,
// stages or buckets.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace qwen3 {

// One tensor of a rule's state over the rank's range: "master", "exp_avg", ...
struct OptimizerStateTensor {
  std::string name;
  TensorView values;  // [range] f32
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // The rule's name as checkpoints record it: "adamw".
  virtual const char* name() const = 0;
  // Its state over the range, in a fixed order; the first is the fp32 master copy of the weights.
  virtual std::vector<OptimizerStateTensor> state() const = 0;
  // Copies the range's parameters (storage dtype) into the master weights: once the weights are
  // initialised or loaded, before the first step.
  virtual void load_master_from_params(const TensorView& params) = 0;
  // One update from `grads` (the reduced gradient over the range, F32 or the storage dtype),
  // scaled by `grad_scale` (the clipping coefficient), at learning rate `lr`; the new weights are
  // written into `params` (the range's parameters).
  virtual void step(const TensorView& grads, double lr, double grad_scale,
                    const TensorView& params) = 0;

  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) { steps_ = steps; }

 protected:
  int64_t steps_ = 0;
};

}  // namespace qwen3
