#include "core/model/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

#include "core/util/error.h"
#include "core/util/options.h"

namespace qwen3 {

const std::string& ModelConfig::layer_type(int64_t layer) const {
  return layer_types.empty() ? kLayerKinds[0] : layer_types[static_cast<size_t>(layer)];
}

namespace {

const OptionSchema<ModelConfig>& schema() {
  static const OptionSchema<ModelConfig> s = [] {
    using C = ModelConfig;
    OptionSchema<C> o("model config");
    o.optional("name", &C::name, std::string(), "a name for people, printed by --describe")
        .required("model_type", &C::model_type, "architecture; only 'qwen3'")
        .required("vocab_size", &C::vocab_size, "rows of the embedding (and the LM head)")
        .required("hidden_size", &C::hidden_size, "width of the residual stream, d")
        .required("intermediate_size", &C::intermediate_size, "SwiGLU inner width")
        .required("num_hidden_layers", &C::num_hidden_layers, "decoder layers")
        .required("num_attention_heads", &C::num_attention_heads, "query heads")
        .required("num_key_value_heads", &C::num_key_value_heads,
                  "key/value heads (GQA); must divide num_attention_heads")
        .required("head_dim", &C::head_dim, "per-head width; even, for RoPE's pairs")
        .required("max_position_embeddings", &C::max_position_embeddings,
                  "longest sequence the model is trained or run at")
        .required("rms_norm_eps", &C::rms_norm_eps, "epsilon inside every RMSNorm")
        .required("rope_theta", &C::rope_theta, "RoPE base; a run stage may override it")
        .required("tie_word_embeddings", &C::tie_word_embeddings,
                  "LM head shares the embedding matrix")
        .optional("initializer_range", &C::initializer_range, 0.02,
                  "std of the normal init of linear and embedding weights")
        .optional("hidden_act", &C::hidden_act, std::string("silu"), "MLP activation; only 'silu'")
        .optional("attention_bias", &C::attention_bias, false,
                  "biases on q/k/v/o projections; Qwen3 has none, only false")
        .optional("layer_types", &C::layer_types,
                  "each decoder layer's kind, one per layer; empty: every layer full_attention "
                  "(the only kind built so far)");
    return o;
  }();
  return s;
}

void validate(const ModelConfig& c, const KeyLocations& at, const std::string& file) {
  auto fail = [&](const char* key, const std::string& message) {
    auto it = at.find(key);
    throw_config_error(it != at.end() ? it->second : SourceLocation{file, 0, 0}, key, message);
  };
  if (c.model_type != "qwen3")
    fail("model_type", "is '" + c.model_type + "'; only 'qwen3' is supported");
  const std::pair<const char*, int64_t> positive[] = {
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings}};
  for (const auto& [key, value] : positive)
    if (value <= 0) fail(key, fmt::format("must be positive, got {}", value));
  // Token ids and positions travel as int32.
  if (c.vocab_size > INT32_MAX)
    fail("vocab_size", fmt::format("{} exceeds int32 token ids", c.vocab_size));
  if (c.max_position_embeddings > INT32_MAX)
    fail("max_position_embeddings",
         fmt::format("{} exceeds int32 positions", c.max_position_embeddings));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("num_key_value_heads",
         fmt::format("{} does not divide num_attention_heads {}: each KV head must serve the same "
                     "number of query heads",
                     c.num_key_value_heads, c.num_attention_heads));
  if (c.head_dim % 2 != 0)
    fail("head_dim", fmt::format("{} is odd; RoPE rotates pairs of dimensions", c.head_dim));
  if (!(c.rms_norm_eps > 0.0))
    fail("rms_norm_eps", fmt::format("must be positive, got {}", c.rms_norm_eps));
  if (!(c.rope_theta > 1.0))
    fail("rope_theta", fmt::format("must be greater than 1, got {}", c.rope_theta));
  if (!(c.initializer_range >= 0.0))
    fail("initializer_range", fmt::format("must not be negative, got {}", c.initializer_range));
  if (c.hidden_act != "silu") fail("hidden_act", "is '" + c.hidden_act + "'; Qwen3 uses 'silu'");
  if (c.attention_bias) fail("attention_bias", "is true; Qwen3 projections have no biases");
  if (!c.layer_types.empty() && int64_t(c.layer_types.size()) != c.num_hidden_layers)
    fail("layer_types", fmt::format("lists {} layers but num_hidden_layers is {}",
                                    c.layer_types.size(), c.num_hidden_layers));
  for (size_t l = 0; l < c.layer_types.size(); ++l)
    if (std::find(kLayerKinds.begin(), kLayerKinds.end(), c.layer_types[l]) == kLayerKinds.end())
      fail("layer_types", fmt::format("layer {} is '{}'; this build implements {}", l,
                                      c.layer_types[l], join_text(kLayerKinds)));
}

}  // namespace

namespace {

ModelConfig config_from_yaml(const YAML::Node& root, const std::string& source_name) {
  ModelConfig config;
  KeyLocations at;
  schema().read(root, source_name, config, at);
  validate(config, at, source_name);
  return config;
}

}  // namespace

ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source_name) {
  return config_from_yaml(load_yaml_text(yaml_text, source_name), source_name);
}

ModelConfig load_model_config(const std::string& path) {
  return config_from_yaml(load_yaml_file(path), path);
}

void validate_model_config(const ModelConfig& config, const std::string& source_name) {
  validate(config, KeyLocations{}, source_name);
}

std::string model_config_help() {
  return schema().help();
}

namespace {

// `"layer_types": [...]` on a line of its own when the config lists them, as transformers 5
// writes them; nothing otherwise (every layer full attention, as older configs say by omission).
std::string layer_types_json(const ModelConfig& c) {
  if (c.layer_types.empty()) return "";
  std::string out = "\n  \"layer_types\": [";
  for (size_t l = 0; l < c.layer_types.size(); ++l)
    out += (l ? ", \"" : "\"") + c.layer_types[l] + "\"";
  return out + "],";
}

}  // namespace

std::string to_hf_config_json(const ModelConfig& c, DType weights_dtype) {
  QWEN3_CHECK(weights_dtype == DType::F32 || weights_dtype == DType::BF16,
              "config.json: weights are stored in F32 or BF16, not {}", dtype_name(weights_dtype));
  return fmt::format(
      R"({{
  "architectures": ["Qwen3ForCausalLM"],
  "model_type": "qwen3",
  "vocab_size": {},
  "hidden_size": {},
  "intermediate_size": {},
  "num_hidden_layers": {},
  "num_attention_heads": {},
  "num_key_value_heads": {},
  "head_dim": {},
  "max_position_embeddings": {},
  "rms_norm_eps": {},
  "rope_theta": {},
  "rope_scaling": null,
  "tie_word_embeddings": {},
  "initializer_range": {},
  "hidden_act": "{}",
  "attention_bias": false,
  "attention_dropout": 0.0,
  "use_sliding_window": false,
  "sliding_window": null,
  "max_window_layers": {},{}
  "torch_dtype": "{}"
}}
)",
      c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
      c.num_key_value_heads, c.head_dim, c.max_position_embeddings, c.rms_norm_eps, c.rope_theta,
      c.tie_word_embeddings ? "true" : "false", c.initializer_range, c.hidden_act,
      c.num_hidden_layers, layer_types_json(c),
      weights_dtype == DType::F32 ? "float32" : "bfloat16");
}

}  // namespace qwen3
