#pragma once
// Which parameters AdamW's weight decay applies to. Each `no_decay` entry is a parameter kind —
// "norm", "embedding" or "linear" — or a pattern over Hugging Face names in shell-glob syntax
// ("model.layers.*.mlp.down_proj.weight"). The default leaves the RMSNorm weights and the
// embedding undecayed, as OLMo and Megatron-style recipes do: decaying a norm's gain towards 0
// shrinks the layer's output, and the embedding sees sparse gradients.
#include <string>
#include <vector>

#include "core/model/param_layout.h"

namespace qwen3 {

struct DecayRule {
  std::vector<std::string> no_decay = {"norm", "embedding"};
};

// True when weight decay applies to this tensor.
bool decays(const DecayRule& rule, const ParamEntry& entry);

// Throws, naming the entry, when an entry matches no parameter of the layout (a typo would
// otherwise silently decay everything).
void validate_decay_rule(const DecayRule& rule, const ParamLayout& layout);

}  // namespace qwen3
