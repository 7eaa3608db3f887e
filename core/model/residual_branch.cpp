#include "core/model/residual_branch.h"

#include "core/model/attention_mixer.h"
#include "core/model/swiglu_mlp.h"
#include "core/util/error.h"

namespace qwen3 {

std::unique_ptr<ResidualBranch> make_mixer(const ModelConfig& config, int layer) {
  const std::string& kind = config.layer_type(layer);
  if (kind == "full_attention") return std::make_unique<AttentionMixer>();
  throw_error("layer " + std::to_string(layer) + " is of kind '" + kind +
              "', which has no mixer in this build");
}

// Every kind so far has Qwen3's MLP.
std::unique_ptr<ResidualBranch> make_mlp(const ModelConfig&, int) {
  return std::make_unique<SwiGluMlp>();
}

}  // namespace qwen3
