#pragma once
// The parts of a decoder layer: each of its residual blocks is resid += branch(norm(resid)), and
// the decoder (Qwen3Model) owns the residual stream, the norms and the adds, fusing each add with
// the norm that reads its result, across layer boundaries too. A branch sees only its own input
// (the normed stream), output and parameters, so a new kind of layer is new branches and nothing
// of the fusions. Qwen3's layer is two: attention (the mixer) and the SwiGLU MLP.
#include <cstdint>
#include <memory>

#include "core/model/activations.h"
#include "core/model/config.h"
#include "core/model/param_layout.h"
#include "core/ops/backend.h"

namespace qwen3 {

// What a branch sees of the running model.
class ModelViews {
 public:
  virtual ~ModelViews() = default;
  virtual Backend& backend() const = 0;
  virtual const ModelConfig& config() const = 0;
  virtual const ParamLayout& params() const = 0;
  virtual const ActivationLayout& activations() const = 0;
  // By layout index; groups are adjacent entries [first, last] as one [Σ rows, cols] matrix.
  virtual TensorView param(int index) const = 0;
  virtual TensorView grad(int index) const = 0;
  virtual TensorView param_group(int first, int last) const = 0;
  virtual TensorView grad_group(int first, int last) const = 0;
  virtual TensorView act(int index) const = 0;
  // Whether the batch has document ids (attention stays within documents).
  virtual bool documents() const = 0;
};

class ResidualBranch {
 public:
  virtual ~ResidualBranch() = default;
  // Adds the branch's tensors to its layer's part of the layout, in the order its forward reads
  // them; forward and backward find them again by component name (ParamLayout::index).
  virtual void declare_params(ParamDeclarer& layer, const ModelConfig& config) const = 0;
  // Declares what its backward reads (saved) and what it works in (scratch) for a micro-batch's
  // shape; forward and backward find them again by name (ActivationLayout::index, ::scratch).
  virtual void declare_activations(ActivationDeclarer& layer, const ModelConfig& config) const = 0;
  // x[N, d], the normed stream -> out[N, d], keeping what backward() needs in the layer's
  // activations. Without `output_needed` (a recomputation before the backward) a branch may skip
  // its last product, whose result only the residual add reads.
  virtual void forward(const ModelViews& m, int layer, const TensorView& x, const TensorView& out,
                       bool output_needed) const = 0;
  // d_out[N, d] (read, may be overwritten) -> d_x[N, d] overwritten; the branch's parameter
  // gradients added to.
  virtual void backward(const ModelViews& m, int layer, const TensorView& d_out,
                        const TensorView& x, const TensorView& d_x) const = 0;
};

// The branches of layer `layer`, by its kind (ModelConfig::layer_type).
std::unique_ptr<ResidualBranch> make_mixer(const ModelConfig& config, int layer);
std::unique_ptr<ResidualBranch> make_mlp(const ModelConfig& config, int layer);

}  // namespace qwen3
