#pragma once
// The model's hyper-parameters, with Hugging Face's config.json key names so that a model YAML
// and an HF checkpoint's config.json say the same thing in the same words.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace qwen3 {

struct ModelConfig {
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 0.0;
  double rope_theta = 0.0;
  bool tie_word_embeddings = true;
  double initializer_range = 0.02;
  std::string hidden_act;
  bool attention_bias = false;
  std::string name;  // free text for people: "Qwen3-0.6B"
  // Each decoder layer's kind, as newer transformers list them; empty: every layer
  // "full_attention" (Qwen3). The kinds this build implements: kLayerKinds.
  std::vector<std::string> layer_types;

  int64_t q_dim() const { return num_attention_heads * head_dim; }   // q_proj rows
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }  // k_proj / v_proj rows
  int64_t gqa_group() const { return num_attention_heads / num_key_value_heads; }
  // Layer `layer`'s kind: layer_types' entry, or "full_attention" when the list is empty.
  const std::string& layer_type(int64_t layer) const;
};

// The decoder layer kinds this build implements (layer_types' values).
inline const std::vector<std::string> kLayerKinds = {"full_attention"};

// Reads and validates a model YAML. Errors name the file, line and key.
ModelConfig load_model_config(const std::string& path);
// The same from text; `source_name` stands in for the file name in errors.
ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source_name);

// The checks parse_model_config applies once the keys are read (model_type, positive sizes, heads
// dividing evenly, ...), for a config filled in from elsewhere: an HF config.json. Errors read
// "source_name: key 'k' ...".
void validate_model_config(const ModelConfig& config, const std::string& source_name);

// Every model key with its type, default and help, for --help.
std::string model_config_help();

// The config as Hugging Face's config.json for Qwen3ForCausalLM; "torch_dtype" names
// `weights_dtype` (F32: "float32", BF16: "bfloat16"), the dtype the weights beside it are stored
// in.
std::string to_hf_config_json(const ModelConfig& config, DType weights_dtype = DType::F32);

}  // namespace qwen3
