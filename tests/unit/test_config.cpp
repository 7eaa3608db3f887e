// Model YAML: the shipped configs load, and every kind of bad input is rejected with a message that
// names the file, the line, the key and what is wrong.
#include <gtest/gtest.h>

#include <string>

#include "core/model/config.h"
#include "core/util/error.h"

namespace {

const std::string kConfigs = std::string(QWEN3_SOURCE_DIR) + "/configs/models/";

const char* kValid = R"(model_type: qwen3
vocab_size: 1024
hidden_size: 64
intermediate_size: 192
num_hidden_layers: 2
num_attention_heads: 4
num_key_value_heads: 2
head_dim: 16
rms_norm_eps: 1.0e-6
rope_theta: 10000
max_position_embeddings: 256
tie_word_embeddings: true
)";

// Replaces the line starting with `key:` by `replacement` (or drops it when empty).
std::string edit(const std::string& key, const std::string& replacement) {
  std::string text = kValid;
  const size_t at = text.find(key + ":");
  EXPECT_NE(at, std::string::npos) << key;
  const size_t end = text.find('\n', at);
  text.replace(at, end - at + 1, replacement.empty() ? "" : replacement + "\n");
  return text;
}

// The error message for `text`, which must be rejected.
std::string error_for(const std::string& text) {
  try {
    qwen3::parse_model_config(text, "bad.yaml");
  } catch (const qwen3::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return "";
}

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

TEST(ModelConfig, ShippedConfigsLoad) {
  const qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + "qwen3-0.6b.yaml");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.max_position_embeddings, 40960);
  EXPECT_TRUE(c.tie_word_embeddings);
  for (const char* name :
       {"tiny.yaml", "tiny-untied.yaml", "bench-mid.yaml", "qwen3-3layer-v1519.yaml"})
    EXPECT_NO_THROW(qwen3::load_model_config(kConfigs + name)) << name;
  EXPECT_EQ(qwen3::parse_model_config(kValid, "ok.yaml").hidden_act, "silu");  // default
}

TEST(ModelConfig, UnknownKeyIsNamedWithLineAndSuggestion) {
  const std::string m = error_for(edit("hidden_size", "hiden_size: 64"));
  expect_contains(m, "bad.yaml:");
  expect_contains(m, "'hiden_size'");
  expect_contains(m, "unknown");
  expect_contains(m, "did you mean 'hidden_size'");
}

TEST(ModelConfig, UnknownKeyLineNumberIsExact) {
  const std::string m = error_for(std::string(kValid) + "sliding_window: 4096\n");
  expect_contains(m, "bad.yaml:13:1: key 'sliding_window'");
}

TEST(ModelConfig, MissingKeyIsNamed) {
  const std::string m = error_for(edit("num_key_value_heads", ""));
  expect_contains(m, "bad.yaml");
  expect_contains(m, "'num_key_value_heads'");
  expect_contains(m, "missing");
}

TEST(ModelConfig, WrongTypesAreNamed) {
  expect_contains(error_for(edit("hidden_size", "hidden_size: 64.5")),
                  "must be an integer, got '64.5'");
  expect_contains(error_for(edit("hidden_size", "hidden_size: big")),
                  "'hidden_size' must be an integer");
  expect_contains(error_for(edit("rope_theta", "rope_theta: fast")),
                  "'rope_theta' must be a number");
  expect_contains(error_for(edit("tie_word_embeddings", "tie_word_embeddings: 1")),
                  "'tie_word_embeddings' must be true or false");
  expect_contains(error_for(edit("head_dim", "head_dim: [16]")),
                  "'head_dim' must be an integer, not a list");
  expect_contains(error_for(edit("head_dim", "head_dim:")), "'head_dim' has no value");
}

TEST(ModelConfig, InconsistentValuesAreNamed) {
  std::string m = error_for(edit("num_key_value_heads", "num_key_value_heads: 3"));
  expect_contains(m, "bad.yaml:7:1: key 'num_key_value_heads'");
  expect_contains(m, "does not divide num_attention_heads 4");
  m = error_for(edit("head_dim", "head_dim: 15"));
  expect_contains(m, "'head_dim' 15 is odd");
  expect_contains(error_for(edit("hidden_size", "hidden_size: 0")),
                  "'hidden_size' must be positive");
  expect_contains(error_for(edit("rms_norm_eps", "rms_norm_eps: -1")),
                  "'rms_norm_eps' must be positive");
  expect_contains(error_for(edit("model_type", "model_type: llama")), "only 'qwen3'");
  expect_contains(error_for(std::string(kValid) + "hidden_act: gelu\n"), "'hidden_act'");
  expect_contains(error_for(std::string(kValid) + "attention_bias: true\n"), "no biases");
}

// layer_types: absent, every layer full attention; listed, one implemented kind per layer.
TEST(ModelConfig, LayerTypesListOneImplementedKindPerLayer) {
  const qwen3::ModelConfig plain = qwen3::parse_model_config(kValid, "ok.yaml");
  EXPECT_TRUE(plain.layer_types.empty());
  EXPECT_EQ(plain.layer_type(1), "full_attention");
  const qwen3::ModelConfig listed = qwen3::parse_model_config(
      std::string(kValid) + "layer_types: [full_attention, full_attention]\n", "ok.yaml");
  EXPECT_EQ(listed.layer_type(0), "full_attention");
  EXPECT_EQ(listed.layer_types.size(), 2u);
  expect_contains(error_for(std::string(kValid) + "layer_types: [full_attention]\n"),
                  "key 'layer_types' lists 1 layers but num_hidden_layers is 2");
  expect_contains(
      error_for(std::string(kValid) + "layer_types: [full_attention, linear_attention]\n"),
      "key 'layer_types' layer 1 is 'linear_attention'; this build implements full_attention");
}

TEST(ModelConfig, SyntaxAndFileErrorsNameTheFile) {
  expect_contains(error_for("vocab_size: [1, 2\n"), "bad.yaml:");
  expect_contains(error_for("- just\n- a list\n"), "must be a mapping");
  try {
    qwen3::load_model_config("/nonexistent/model.yaml");
    FAIL();
  } catch (const qwen3::Error& e) {
    expect_contains(e.what(), "/nonexistent/model.yaml");
  }
}

TEST(ModelConfig, HfConfigJsonCarriesEveryArchitectureKey) {
  const std::string json = qwen3::to_hf_config_json(qwen3::parse_model_config(kValid, "ok.yaml"));
  for (const char* part : {"\"vocab_size\": 1024", "\"num_key_value_heads\": 2", "\"head_dim\": 16",
                           "\"tie_word_embeddings\": true", "\"rope_theta\": 10000",
                           "\"model_type\": \"qwen3\"", "Qwen3ForCausalLM"})
    expect_contains(json, part);
}

// A config that lists its layers' kinds writes them, and reads back to the same list.
TEST(ModelConfig, HfConfigJsonListsLayerTypesWhenTheConfigDoes) {
  EXPECT_EQ(
      qwen3::to_hf_config_json(qwen3::parse_model_config(kValid, "ok.yaml")).find("layer_types"),
      std::string::npos);
  const qwen3::ModelConfig listed = qwen3::parse_model_config(
      std::string(kValid) + "layer_types: [full_attention, full_attention]\n", "ok.yaml");
  expect_contains(qwen3::to_hf_config_json(listed),
                  "\"layer_types\": [\"full_attention\", \"full_attention\"],\n");
}

}  // namespace
