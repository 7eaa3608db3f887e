#include "parallel/decay_rule.h"

#include <fnmatch.h>

#include "core/util/error.h"

namespace qwen3 {

namespace {

bool entry_matches(const std::string& pattern, const ParamEntry& entry) {
  if (pattern == "norm") return entry.kind == ParamKind::Norm;
  if (pattern == "embedding") return entry.kind == ParamKind::Embedding;
  if (pattern == "linear") return entry.kind == ParamKind::Linear;
  return fnmatch(pattern.c_str(), entry.name.c_str(), 0) == 0;
}

}  // namespace

bool decays(const DecayRule& rule, const ParamEntry& entry) {
  for (const std::string& pattern : rule.no_decay)
    if (entry_matches(pattern, entry)) return false;
  return true;
}

void validate_decay_rule(const DecayRule& rule, const ParamLayout& layout) {
  for (const std::string& pattern : rule.no_decay) {
    bool any = false;
    for (const ParamEntry& e : layout.entries())
      any = any || entry_matches(pattern, e);
    QWEN3_CHECK(any,
                "no_decay entry '{}' matches no parameter: use a kind (norm, embedding, linear) "
                "or a glob over names such as 'model.layers.*.mlp.*'",
                pattern);
  }
}

}  // namespace qwen3
