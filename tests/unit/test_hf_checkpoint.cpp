// Hugging Face model directories: safetensors written and read back exactly (fp32) or rounded to
// bf16 as specified, tied and untied heads, sharded indexes, config.json in both directions, and
// every kind of damaged or inconsistent input refused with the file and tensor named.
// (Interop with transformers' and safetensors' own Python code is tests/python's job.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/model/hf_checkpoint.h"
#include "core/model/qwen3_model.h"
#include "core/model/safetensors.h"
#include "core/util/error.h"
#include "core/util/file_io.h"
#include "core/util/rng.h"

namespace {

namespace fs = std::filesystem;
using qwen3::DType;
using qwen3::SafetensorsReader;
using qwen3::SafetensorsTensor;

const std::string kConfigs = std::string(QWEN3_SOURCE_DIR) + "/configs/models/";

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

// The message of the qwen3::Error that `f` must throw.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const qwen3::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no qwen3::Error thrown";
  return "";
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// A safetensors file from a hand-written header and data, for headers no writer would produce.
std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[size_t(i)] = char(uint64_t(header.size()) >> (8 * i));
  return out + header + data;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

float rounded_to_bf16(float f) {
  return qwen3::bf16_bits_to_float(qwen3::float_to_bf16_bits(f));
}

class HfCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = (fs::path(::testing::TempDir()) / "qwen3_hf" / info->name()).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir);
  }
  std::string path(const std::string& name) const { return (fs::path(dir) / name).string(); }

  // A seeded model whose norm weights are not all 1, so that a mixed-up tensor shows.
  std::unique_ptr<qwen3::Qwen3Model> make_model(const std::string& yaml, uint64_t seed) {
    auto model =
        std::make_unique<qwen3::Qwen3Model>(qwen3::load_model_config(kConfigs + yaml), *backend);
    model->init_weights(seed);
    std::vector<float> params = model->params_to_host();
    for (const qwen3::ParamEntry& e : model->layout().entries())
      if (e.kind == qwen3::ParamKind::Norm)
        qwen3::fill_uniform(params.data() + e.offset, e.numel(), 0.5, 1.5, seed,
                            7000 + uint64_t(e.offset));
    model->load_params(params);
    return model;
  }

  // Every tensor of `model` (plus `extra`) as writer input pointing into `host`.
  static std::vector<SafetensorsTensor> tensors_of(const qwen3::Qwen3Model& model,
                                                   const std::vector<float>& host) {
    std::vector<SafetensorsTensor> out;
    for (const qwen3::ParamEntry& e : model.layout().entries()) {
      std::vector<int64_t> shape;
      for (int d = 0; d < e.shape.rank(); ++d)
        shape.push_back(e.shape[d]);
      out.push_back({e.name, DType::F32, shape, host.data() + e.offset});
    }
    return out;
  }

  void write_config(const qwen3::Qwen3Model& model) {
    qwen3::write_file_atomic(path("config.json"), qwen3::to_hf_config_json(model.config()));
  }

  // Loads `dir` into a freshly initialised model of `yaml`; returns the load error, or "".
  std::string load_error(const std::string& yaml) {
    auto fresh = make_model(yaml, 99);
    try {
      qwen3::load_hf_weights(*fresh, dir);
    } catch (const qwen3::Error& e) {
      return e.what();
    }
    return "";
  }

  std::unique_ptr<qwen3::Backend> backend = qwen3::make_cpu_backend();
  std::string dir;
};

// ---- safetensors, the format itself -------------------------------------------------------------

TEST_F(HfCheckpoint, SafetensorsRoundTripsF32ExactlyAndBf16Rounded) {
  const std::vector<float> a = {1.0f, -2.5f, 3.1415926f, 1e-30f, -0.0f, 65504.0f};  // [2, 3]
  const std::vector<float> b = {0.1f, 0.2f, 0.3f, 0.4f, 1.0f + 1.0f / 256, 7.0f};   // [6]
  const float scalar = 42.0f;
  qwen3::write_safetensors(path("t.safetensors"),
                           {{"a", DType::F32, {2, 3}, a.data()},
                            {"b", DType::BF16, {6}, b.data()},
                            {"s", DType::F32, {}, &scalar},
                            {"empty", DType::BF16, {0, 4}, nullptr}},
                           {{"format", "pt"}, {"note", "ünïcode"}});
  // The header is padded so that the data starts 8-byte aligned.
  const std::string bytes = qwen3::read_file(path("t.safetensors"));
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i)
    header |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header + 6 * 4 + 6 * 2 + 4);

  const SafetensorsReader r(path("t.safetensors"));
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.metadata().at("note"), "ünïcode");
  ASSERT_EQ(r.tensors().size(), 4u);
  EXPECT_EQ(r.at("a").dtype, "F32");
  EXPECT_EQ(r.at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.at("b").dtype, "BF16");
  EXPECT_EQ(r.at("s").shape.size(), 0u);
  EXPECT_EQ(r.at("s").numel(), 1);
  EXPECT_EQ(r.at("empty").numel(), 0);
  EXPECT_EQ(r.find("missing"), nullptr);

  std::vector<float> out(6);
  r.read_f32("a", out.data());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(bits_of(out[i]), bits_of(a[i])) << i;
  r.read_f32("b", out.data());
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_EQ(out[i], rounded_to_bf16(b[i])) << i;
  EXPECT_EQ(out[4], 1.0f);  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even, 1
  float s = 0;
  r.read_f32("s", &s);
  EXPECT_EQ(s, 42.0f);
  // A slice reads just its elements.
  std::vector<float> part(2);
  r.read_f32("a", part.data(), 3, 2);
  EXPECT_EQ(part, (std::vector<float>{a[3], a[4]}));
  expect_contains(error_of([&] { r.read_f32("a", part.data(), 5, 2); }), "outside its 6");
  expect_contains(error_of([&] { r.at("missing"); }), "no tensor 'missing'");
}

TEST(HfCheckpointBf16, RoundsToNearestEven) {
  using qwen3::float_to_bf16_bits;
  const float ulp = 1.0f / 128;                                    // bf16 spacing just above 1
  EXPECT_EQ(rounded_to_bf16(1.0f + ulp / 2), 1.0f);                // tie, down to even
  EXPECT_EQ(rounded_to_bf16(1.0f + 3 * ulp / 2), 1.0f + 2 * ulp);  // tie, up to even
  EXPECT_EQ(rounded_to_bf16(1.0f + ulp / 2 + 1e-6f), 1.0f + ulp);  // above the tie
  EXPECT_EQ(rounded_to_bf16(-(1.0f + ulp / 2 + 1e-6f)), -(1.0f + ulp));  // sign symmetric
  EXPECT_TRUE(std::isnan(rounded_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(rounded_to_bf16(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  // The largest float is closer to 2^128 than to the largest bf16: it rounds to infinity.
  EXPECT_EQ(rounded_to_bf16(std::numeric_limits<float>::max()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
}

TEST_F(HfCheckpoint, SafetensorsReadsF16) {
  // 1, -2, 0.5, the smallest subnormal 2^-24, the largest normal 65504, +inf.
  const uint16_t halves[] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0x7c00};
  const std::string data(reinterpret_cast<const char*>(halves), sizeof halves);
  write_bytes(path("h.safetensors"),
              raw_safetensors(R"({"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]}})", data));
  std::vector<float> out(6);
  SafetensorsReader(path("h.safetensors")).read_f32("h", out.data());
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f, 0.5f, std::ldexp(1.0f, -24), 65504.0f,
                                     std::numeric_limits<float>::infinity()}));
}

TEST_F(HfCheckpoint, SafetensorsRefusesDamagedFiles) {
  const std::string p = path("bad.safetensors");
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data(8, '\0');
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> expected;  // parts of the message
  };
  const std::string good = raw_safetensors("{" + ok_entry + "}", data);
  const std::vector<Case> cases = {
      {"shorter than the length field", std::string("\x10\0\0", 3), {"truncated", "3 bytes"}},
      {"header length beyond the file",
       raw_safetensors("{}", "").substr(0, 8) + "{",
       {"header length 2", "past the end of the file"}},
      {"data cut short",
       good.substr(0, good.size() - 3),
       {"tensor 'w'", "run past the end of the data", "truncated"}},
      {"bad JSON", raw_safetensors(R"({"w": {"dtype": )", data), {"not valid JSON"}},
      {"not an object", raw_safetensors("[1, 2]", data), {"not an object"}},
      {"unknown dtype",
       raw_safetensors(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data),
       {"tensor 'w'", "unknown dtype 'F33'"}},
      {"shape and span disagree",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
       {"tensor 'w'", "shape [3] of F32 needs 12 bytes", "span 8"}},
      {"negative dimension",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
       {"tensor 'w'", "non-negative integer"}},
      {"offsets reversed",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data),
       {"tensor 'w'", "end before they begin"}},
      {"overlap",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("v":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})",
                       data),
       {"'w' [0, 8]", "'v' [4, 8]", "overlap"}},
      {"duplicate tensor",
       raw_safetensors("{" + ok_entry + "," + ok_entry + "}", data),
       {"tensor 'w' twice"}},
      {"missing key",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[2]}})", data),
       {"tensor 'w'", "missing 'data_offsets'"}},
      {"extra key",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", data),
       {"tensor 'w'", "unknown key 'x'"}},
      {"metadata not strings",
       raw_safetensors(R"({"__metadata__":{"format":1}})", ""),
       {"__metadata__ 'format' must be a string"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(p, c.bytes);
    const std::string message = error_of([&] { SafetensorsReader r(p); });
    expect_contains(message, p);
    for (const std::string& part : c.expected)
      expect_contains(message, part);
  }
  write_bytes(p, good);
  EXPECT_NO_THROW(SafetensorsReader r(p));
  // Reading an integer tensor as weights is refused, naming it.
  write_bytes(p,
              raw_safetensors(R"({"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", data));
  float f = 0;
  expect_contains(error_of([&] { SafetensorsReader(p).read_f32("i", &f); }), "tensor 'i' is I64");
}

TEST_F(HfCheckpoint, SafetensorsWriterRefusesBadInput) {
  const float x = 1.0f;
  const std::string p = path("w.safetensors");
  expect_contains(
      error_of([&] {
        qwen3::write_safetensors(p, {{"a", DType::F32, {1}, &x}, {"a", DType::F32, {1}, &x}}, {});
      }),
      "tensor 'a' is listed twice");
  expect_contains(error_of([&] {
                    qwen3::write_safetensors(p, {{"a", DType::I32, {1}, &x}}, {});
                  }),
                  "F32 or BF16");
  expect_contains(error_of([&] {
                    qwen3::write_safetensors(p, {{"__metadata__", DType::F32, {1}, &x}}, {});
                  }),
                  "reserved");
}

// ---- HF model directories ----------------------------------------------------------------------

class HfCheckpointRoundTrip : public HfCheckpoint,
                              public ::testing::WithParamInterface<const char*> {};

TEST_P(HfCheckpointRoundTrip, F32IsBitExactAndBf16IsRounded) {
  const std::string yaml = GetParam();
  const auto model = make_model(yaml, 5);
  const std::vector<float> original = model->params_to_host();
  const bool tied = model->config().tie_word_embeddings;

  qwen3::save_hf_model(*model, dir, DType::F32);
  EXPECT_TRUE(qwen3::is_hf_model_dir(dir));
  {
    const SafetensorsReader r(path("model.safetensors"));
    EXPECT_EQ(r.metadata().at("format"), "pt");
    // Transformers writes a tied model without the head; an untied one has it.
    EXPECT_EQ(r.find("lm_head.weight") != nullptr, !tied);
    EXPECT_EQ(r.tensors().size(), model->layout().entries().size());
    for (const qwen3::SafetensorsEntry& e : r.tensors())
      EXPECT_EQ(e.dtype, "F32") << e.name;
  }
  const qwen3::ModelConfig loaded_config = qwen3::load_hf_config(dir);
  const qwen3::ModelConfig& c = model->config();
  EXPECT_EQ(loaded_config.vocab_size, c.vocab_size);
  EXPECT_EQ(loaded_config.hidden_size, c.hidden_size);
  EXPECT_EQ(loaded_config.intermediate_size, c.intermediate_size);
  EXPECT_EQ(loaded_config.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(loaded_config.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(loaded_config.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(loaded_config.head_dim, c.head_dim);
  EXPECT_EQ(loaded_config.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(loaded_config.rms_norm_eps, c.rms_norm_eps);
  EXPECT_EQ(loaded_config.rope_theta, c.rope_theta);
  EXPECT_EQ(loaded_config.tie_word_embeddings, c.tie_word_embeddings);
  EXPECT_EQ(loaded_config.initializer_range, c.initializer_range);
  expect_contains(qwen3::read_file(path("config.json")), "\"torch_dtype\": \"float32\"");

  auto fresh = make_model(yaml, 6);
  ASSERT_NE(fresh->params_to_host(), original);
  qwen3::load_hf_weights(*fresh, dir);
  const std::vector<float> loaded = fresh->params_to_host();
  ASSERT_EQ(loaded.size(), original.size());
  for (size_t i = 0; i < loaded.size(); ++i)
    ASSERT_EQ(bits_of(loaded[i]), bits_of(original[i])) << "element " << i;

  qwen3::save_hf_model(*model, dir, DType::BF16);
  expect_contains(qwen3::read_file(path("config.json")), "\"torch_dtype\": \"bfloat16\"");
  EXPECT_EQ(SafetensorsReader(path("model.safetensors")).at("model.norm.weight").dtype, "BF16");
  qwen3::load_hf_weights(*fresh, dir);
  const std::vector<float> from_bf16 = fresh->params_to_host();
  size_t changed = 0;
  for (size_t i = 0; i < from_bf16.size(); ++i) {
    ASSERT_EQ(from_bf16[i], rounded_to_bf16(original[i])) << "element " << i;
    changed += from_bf16[i] != original[i];
  }
  EXPECT_GT(changed, from_bf16.size() / 2);  // the bf16 file really is bf16
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, HfCheckpointRoundTrip,
                         ::testing::Values("tiny.yaml", "tiny-untied.yaml"), [](const auto& info) {
                           return std::string(info.param) == "tiny.yaml" ? "Tied" : "Untied";
                         });

TEST_F(HfCheckpoint, TiedModelAcceptsAnEqualHeadAndRefusesADifferentOne) {
  const auto model = make_model("tiny.yaml", 8);
  std::vector<float> host = model->params_to_host();
  const qwen3::ParamEntry& embed = model->layout()[model->layout().embed_tokens()];
  std::vector<float> head(host.begin() + embed.offset,
                          host.begin() + embed.offset + embed.numel());  // [V, d]
  write_config(*model);
  auto tensors = tensors_of(*model, host);
  tensors.push_back({"lm_head.weight", DType::F32, {embed.shape[0], embed.shape[1]}, head.data()});
  qwen3::write_safetensors(path("model.safetensors"), tensors, {{"format", "pt"}});
  EXPECT_EQ(load_error("tiny.yaml"), "");

  head[head.size() - 1] += 1.0f;
  qwen3::write_safetensors(path("model.safetensors"), tensors, {{"format", "pt"}});
  const std::string message = load_error("tiny.yaml");
  expect_contains(message, path("model.safetensors"));
  expect_contains(message, "lm_head.weight differs from model.embed_tokens.weight");
  expect_contains(message, "tie_word_embeddings");
}

TEST_F(HfCheckpoint, UntiedModelNeedsItsHead) {
  const auto model = make_model("tiny-untied.yaml", 8);
  const std::vector<float> host = model->params_to_host();
  auto tensors = tensors_of(*model, host);
  tensors.erase(
      std::remove_if(tensors.begin(), tensors.end(),
                     [](const SafetensorsTensor& t) { return t.name == "lm_head.weight"; }),
      tensors.end());
  write_config(*model);
  qwen3::write_safetensors(path("model.safetensors"), tensors, {});
  const std::string message = load_error("tiny-untied.yaml");
  expect_contains(message, "missing tensor 'lm_head.weight'");
  expect_contains(message, "tie_word_embeddings false");
}

TEST_F(HfCheckpoint, ModelFileProblemsNameTheFileAndTensor) {
  const auto model = make_model("tiny.yaml", 8);
  const std::vector<float> host = model->params_to_host();
  const std::string file = path("model.safetensors");
  write_config(*model);

  const std::string k_proj = "model.layers.1.self_attn.k_proj.weight";  // [32, 64] in tiny
  const int k = model->layout().index(1, "self_attn.k_proj");
  ASSERT_EQ(model->layout()[k].name, k_proj);

  auto without = tensors_of(*model, host);
  without.erase(without.begin() + k);
  qwen3::write_safetensors(file, without, {});
  std::string message = load_error("tiny.yaml");
  expect_contains(message, file);
  expect_contains(message, "missing tensor '" + k_proj + "' (shape [32, 64])");

  auto reshaped = tensors_of(*model, host);
  reshaped[size_t(k)].shape = {64, 32};  // transposed
  qwen3::write_safetensors(file, reshaped, {});
  message = load_error("tiny.yaml");
  expect_contains(message, file);
  expect_contains(
      message,
      "tensor '" + k_proj + "' has shape [64, 32], but the model's config gives it shape [32, 64]");

  // The same bytes declared as int32: a valid file, but not weights.
  qwen3::write_safetensors(file, tensors_of(*model, host), {});
  std::string bytes = qwen3::read_file(file);
  bytes.replace(bytes.find("\"F32\"", bytes.find(k_proj)), 5, "\"I32\"");
  write_bytes(file, bytes);
  expect_contains(load_error("tiny.yaml"), "tensor '" + k_proj + "' is I32");

  auto extra = tensors_of(*model, host);
  extra.push_back({"model.layers.9.mlp.up_proj.weight", DType::F32, {2}, host.data()});
  qwen3::write_safetensors(file, extra, {});
  message = load_error("tiny.yaml");
  expect_contains(message, "'model.layers.9.mlp.up_proj.weight'");
  expect_contains(message, "does not have");

  fs::remove(file);
  EXPECT_FALSE(qwen3::is_hf_model_dir(dir));
  expect_contains(load_error("tiny.yaml"), "neither model.safetensors nor");
}

TEST_F(HfCheckpoint, ShardedIndexLoadsAndIsCheckedAgainstTheShards) {
  const auto model = make_model("tiny-untied.yaml", 12);
  const std::vector<float> host = model->params_to_host();
  const auto tensors = tensors_of(*model, host);
  const size_t half = tensors.size() / 2;
  const std::vector<SafetensorsTensor> first(tensors.begin(), tensors.begin() + long(half)),
      second(tensors.begin() + long(half), tensors.end());
  write_config(*model);
  qwen3::write_safetensors(path("model-00001-of-00002.safetensors"), first, {{"format", "pt"}});
  qwen3::write_safetensors(path("model-00002-of-00002.safetensors"), second, {{"format", "pt"}});
  auto write_index = [&](const std::string& extra_entry) {
    std::string map;
    for (size_t i = 0; i < tensors.size(); ++i)
      map += fmt::format("{}\"{}\": \"model-0000{}-of-00002.safetensors\"", i ? ", " : "",
                         tensors[i].name, i < half ? 1 : 2);
    qwen3::write_file_atomic(
        path("model.safetensors.index.json"),
        "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {" + map + extra_entry + "}}");
  };
  write_index("");
  EXPECT_TRUE(qwen3::is_hf_model_dir(dir));
  auto fresh = make_model("tiny-untied.yaml", 13);
  qwen3::load_hf_weights(*fresh, dir);
  EXPECT_EQ(fresh->params_to_host(), host);

  write_index(", \"extra.weight\": \"model-00001-of-00002.safetensors\"");
  expect_contains(load_error("tiny-untied.yaml"), "puts tensor 'extra.weight' in");
  write_index(", \"extra.weight\": \"model-00003-of-00002.safetensors\"");
  expect_contains(load_error("tiny-untied.yaml"), "does not exist");
  write_index(", \"extra.weight\": \"../elsewhere.safetensors\"");
  expect_contains(load_error("tiny-untied.yaml"), "not a file name in the same directory");
  // A shard holding a tensor that the index does not list.
  auto more = second;
  more.push_back({"stray.weight", DType::F32, {1}, host.data()});
  qwen3::write_safetensors(path("model-00002-of-00002.safetensors"), more, {});
  write_index("");
  const std::string message = load_error("tiny-untied.yaml");
  expect_contains(message, "model-00002-of-00002.safetensors: holds tensor 'stray.weight'");
}

// ---- config.json --------------------------------------------------------------------------------

// Qwen/Qwen3-0.6B's config.json as released (transformers 4.51).
const char* kQwen3_06B = R"({
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// A config.json as transformers 5 writes it (5.17, Qwen3Config(...).save_pretrained): the RoPE base
// moved into rope_parameters, each layer's attention kind is listed, and no torch_dtype.
const char* kTransformers5 = R"({
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": null,
  "eos_token_id": null,
  "head_dim": 16,
  "hidden_act": "silu",
  "hidden_size": 64,
  "initializer_range": 0.02,
  "intermediate_size": 192,
  "layer_types": [
    "full_attention",
    "full_attention"
  ],
  "max_position_embeddings": 256,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "pad_token_id": null,
  "rms_norm_eps": 1e-06,
  "rope_parameters": {
    "rope_theta": 10000,
    "rope_type": "default"
  },
  "sliding_window": null,
  "tie_word_embeddings": true,
  "transformers_version": "5.17.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 1024
})";

class HfCheckpointConfig : public HfCheckpoint {
 protected:
  // kQwen3_06B with the line of `key` replaced (or dropped when `line` is empty).
  std::string edited(const std::string& key, const std::string& line) {
    std::string text = kQwen3_06B;
    const size_t at = text.find("\"" + key + "\":");
    EXPECT_NE(at, std::string::npos) << key;
    const size_t end = text.find('\n', at);
    text.replace(at, end - at, line);
    return text;
  }
  std::string config_error(const std::string& text) {
    qwen3::write_file_atomic(path("config.json"), text);
    const std::string message = error_of([&] { qwen3::load_hf_config(dir); });
    expect_contains(message, path("config.json"));
    return message;
  }
};

TEST_F(HfCheckpointConfig, RealQwen3ConfigLoadsAsTheShippedYaml) {
  qwen3::write_file_atomic(path("config.json"), kQwen3_06B);
  const qwen3::ModelConfig c = qwen3::load_hf_config(dir);
  const qwen3::ModelConfig y = qwen3::load_model_config(kConfigs + "qwen3-0.6b.yaml");
  EXPECT_EQ(c.model_type, y.model_type);
  EXPECT_EQ(c.vocab_size, y.vocab_size);
  EXPECT_EQ(c.hidden_size, y.hidden_size);
  EXPECT_EQ(c.intermediate_size, y.intermediate_size);
  EXPECT_EQ(c.num_hidden_layers, y.num_hidden_layers);
  EXPECT_EQ(c.num_attention_heads, y.num_attention_heads);
  EXPECT_EQ(c.num_key_value_heads, y.num_key_value_heads);
  EXPECT_EQ(c.head_dim, y.head_dim);
  EXPECT_EQ(c.max_position_embeddings, y.max_position_embeddings);
  EXPECT_EQ(c.rms_norm_eps, y.rms_norm_eps);
  EXPECT_EQ(c.rope_theta, y.rope_theta);
  EXPECT_EQ(c.tie_word_embeddings, y.tie_word_embeddings);
  EXPECT_EQ(c.initializer_range, y.initializer_range);
  EXPECT_EQ(c.hidden_act, y.hidden_act);
  EXPECT_EQ(c.attention_bias, y.attention_bias);
  EXPECT_EQ(c.name, fs::path(dir).filename().string());
}

TEST_F(HfCheckpointConfig, UnsupportedSettingsAreRefusedNamingTheKey) {
  struct Case {
    std::string key, line;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"rope_scaling",
       R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0},)",
       {"key 'rope_scaling'", "yarn", "not implemented"}},
      {"model_type", R"("model_type": "llama",)", {"key 'model_type'", "'llama'", "only 'qwen3'"}},
      {"use_sliding_window",
       R"("use_sliding_window": true,)",
       {"key 'use_sliding_window'", "sliding-window"}},
      {"attention_bias", R"("attention_bias": true,)", {"key 'attention_bias'", "no biases"}},
      {"hidden_act", R"("hidden_act": "gelu",)", {"key 'hidden_act'", "'gelu'"}},
      {"attention_dropout", R"("attention_dropout": 0.1,)", {"key 'attention_dropout'", "0.1"}},
      {"use_cache",
       R"("quantization_config": {"bits": 4},)",
       {"key 'quantization_config'", "refused rather than ignored"}},
      {"hidden_size", R"("hidden_size": "1024",)", {"key 'hidden_size'", "must be an integer"}},
      {"head_dim", "", {"key 'head_dim'", "missing"}},
      {"num_key_value_heads",
       R"("num_key_value_heads": 3,)",
       {"key 'num_key_value_heads'", "does not divide"}},
      {"rms_norm_eps", R"("rms_norm_eps": 0,)", {"key 'rms_norm_eps'", "must be positive"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const std::string message = config_error(edited(c.key, c.line));
    for (const std::string& part : c.expected)
      expect_contains(message, part);
  }
  expect_contains(config_error("{\"model_type\": \"qwen3\",}"), "not valid JSON");
  expect_contains(config_error("[1]"), "expected a JSON object");
}

TEST_F(HfCheckpointConfig, Transformers5ConfigWithRopeParametersLoads) {
  qwen3::write_file_atomic(path("config.json"), kTransformers5);
  const qwen3::ModelConfig c = qwen3::load_hf_config(dir);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.layer_types, (std::vector<std::string>{"full_attention", "full_attention"}));

  // Written by us (top-level rope_theta), read back with the 5.x layout's value beside it.
  std::string both = kTransformers5;
  both.insert(both.find("\"sliding_window\""), "\"rope_theta\": 10000,\n  ");
  qwen3::write_file_atomic(path("config.json"), both);
  EXPECT_EQ(qwen3::load_hf_config(dir).rope_theta, 10000.0);
}

TEST_F(HfCheckpointConfig, Transformers5RopeScalingAndOtherLayerKindsAreRefused) {
  const auto with = [](const std::string& from, const std::string& to) {
    std::string text = kTransformers5;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  const std::string rope = R"("rope_type": "default")";
  expect_contains(config_error(with(rope, R"("rope_type": "yarn", "factor": 4.0)")),
                  "key 'rope_parameters'");
  expect_contains(config_error(with(rope, R"("rope_type": "yarn")")), "\"yarn\"");
  expect_contains(config_error(with(rope, R"("rope_type": "default", "factor": 2.0)")), "'factor'");
  expect_contains(config_error(with(R"("rope_theta": 10000,)", "")), "needs a numeric rope_theta");
  expect_contains(
      config_error(with("\"sliding_window\"", "\"rope_theta\": 500000,\n  \"sliding_window\"")),
      "must agree");
  expect_contains(config_error(with("\"full_attention\"\n", "\"sliding_attention\"\n")),
                  "\"sliding_attention\"");
  expect_contains(config_error(with("\"full_attention\",\n", "")), "lists 1 layers");
}

}  // namespace
