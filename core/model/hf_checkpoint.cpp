#include "core/model/hf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/safetensors.h"
#include "core/util/error.h"
#include "core/util/file_io.h"
#include "core/util/options.h"

namespace qwen3 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw_error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

// config.json keys that do not change what the model computes from its weights: names, token ids
// for generation, output switches, the dtype the weights happen to be stored in. Anything else
// this file does not handle is refused, since silently ignoring it could train a different model.
const std::set<std::string>& ignored_config_keys() {
  static const std::set<std::string> keys = {"_name_or_path",
                                             "architectures",
                                             "bos_token_id",
                                             "dtype",
                                             "eos_token_id",
                                             "id2label",
                                             "label2id",
                                             "name_or_path",
                                             "output_attentions",
                                             "output_hidden_states",
                                             "pad_token_id",
                                             "return_dict",
                                             "tokenizer_class",
                                             "torch_dtype",
                                             "transformers_version",
                                             "use_cache"};
  return keys;
}

// Reads typed values out of config.json's top-level object, remembering which keys it used, so
// that the rest can be checked against the allow-list.
class ConfigJson {
 public:
  ConfigJson(std::string path, json root) : path_(std::move(path)), root_(std::move(root)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw_config_error(SourceLocation{path_, 0, 0}, key, message);
  }
  const json& root() const { return root_; }
  bool has(const std::string& key) const { return root_.contains(key); }
  const json& value(const std::string& key) {
    used_.insert(key);
    return root_.at(key);
  }
  bool used(const std::string& key) const { return used_.count(key) != 0; }

  // Required keys must be present and non-null; optional ones fall back to `fallback`.
  template <class T>
  void read(const char* key, T& out, bool required, T fallback = T{}) {
    if (!has(key) || root_.at(key).is_null()) {
      used_.insert(key);
      if (required) fail(key, "is required in a Qwen3 config.json but missing");
      out = fallback;
      return;
    }
    const json& v = value(key);
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
        fail(key, "is too large: " + v.dump());
      out = v.get<int64_t>();
    } else if constexpr (std::is_same_v<T, double>) {
      if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
      out = v.get<double>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
      out = v.get<bool>();
    } else {
      static_assert(std::is_same_v<T, std::string>, "config values are numbers, bools, strings");
      if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
      out = v.get<std::string>();
    }
  }

 private:
  std::string path_;
  json root_;
  std::set<std::string> used_;
};

// transformers 4.x writes the RoPE base as top-level `rope_theta`; 5.x writes
// `rope_parameters: {rope_type, rope_theta, ...}`. Either is read; with both, they must agree. Only
// plain RoPE is implemented, so any other rope_type or scaling parameter is refused.
void read_rope_theta(ConfigJson& c, double& theta) {
  const bool has_parameters = c.has("rope_parameters") && !c.root().at("rope_parameters").is_null();
  if (!has_parameters) {
    c.read("rope_theta", theta, true);
    return;
  }
  const json& p = c.value("rope_parameters");
  if (!p.is_object()) c.fail("rope_parameters", "must be an object, got " + p.dump());
  for (const auto& item : p.items()) {
    if (item.key() == "rope_type") {
      if (item.value() != "default")
        c.fail("rope_parameters",
               "has rope_type " + item.value().dump() +
                   "; RoPE scaling is not implemented, only \"default\" is supported");
    } else if (item.key() != "rope_theta") {
      c.fail("rope_parameters", "has '" + item.key() + "' (" + p.dump() +
                                    "); RoPE scaling is not implemented, only rope_type "
                                    "\"default\" with rope_theta is supported");
    }
  }
  if (!p.contains("rope_theta") || !p.at("rope_theta").is_number())
    c.fail("rope_parameters", "needs a numeric rope_theta, got " + p.dump());
  theta = p.at("rope_theta").get<double>();
  if (c.has("rope_theta") && !c.root().at("rope_theta").is_null()) {
    double top = 0.0;
    c.read("rope_theta", top, true);
    if (top != theta)
      c.fail(
          "rope_theta",
          fmt::format("is {} but rope_parameters.rope_theta is {}; they must agree", top, theta));
  }
}

// Keys that this trainer does not implement in general, accepted only at the value that means
// "off" (and the keys that only matter when they are on).
void check_unsupported_settings(ConfigJson& c) {
  if (c.has("rope_scaling") && !c.value("rope_scaling").is_null())
    c.fail("rope_scaling", "is " + c.root().at("rope_scaling").dump() +
                               "; RoPE scaling is not implemented, only null is supported");
  bool sliding = false;
  c.read("use_sliding_window", sliding, false, false);
  if (sliding) c.fail("use_sliding_window", "is true; sliding-window attention is not implemented");
  // Only read by the model when use_sliding_window is true.
  for (const char* key : {"sliding_window", "max_window_layers"})
    if (c.has(key)) {
      const json& v = c.value(key);
      if (!v.is_null() && !v.is_number_integer())
        c.fail(key, "must be an integer or null, got " + v.dump());
    }
  double dropout = 0.0;
  c.read("attention_dropout", dropout, false, 0.0);
  if (dropout != 0.0)
    c.fail("attention_dropout",
           fmt::format("is {}; attention dropout is not implemented, only 0", dropout));
  // Newer transformers list each layer's attention kind; only full attention is implemented.
  if (c.has("layer_types")) {
    const json& types = c.value("layer_types");
    if (!types.is_array()) c.fail("layer_types", "must be a list, got " + types.dump());
    int64_t layers = 0;
    c.read("num_hidden_layers", layers, true);
    if (int64_t(types.size()) != layers)
      c.fail("layer_types",
             fmt::format("lists {} layers but num_hidden_layers is {}", types.size(), layers));
    for (const json& t : types)
      if (t != "full_attention")
        c.fail("layer_types", "holds " + t.dump() + "; only \"full_attention\" is implemented");
  }
}

// Where every tensor of an HF model directory lives: one file, or the shards an index names.
struct WeightFiles {
  std::string where;  // the file to name for a tensor that is not there at all
  std::vector<std::unique_ptr<SafetensorsReader>> readers;
  std::map<std::string, const SafetensorsReader*> tensor_file;
};

// A shard name from the index must be a file in the same directory.
void check_shard_name(const std::string& index_path, const std::string& tensor,
                      const std::string& shard) {
  QWEN3_CHECK(
      !shard.empty() && shard.find('/') == std::string::npos && shard != "." && shard != "..",
      "{}: weight_map puts tensor '{}' in '{}', which is not a file name in the same "
      "directory",
      index_path, tensor, shard);
}

WeightFiles open_weight_files(const std::string& dir) {
  WeightFiles files;
  const std::string single = join(dir, kWeightsFile), index = join(dir, kIndexFile);
  // One file wins over an index when both are there, as in transformers' from_pretrained.
  if (is_file(single)) {
    files.where = single;
    files.readers.push_back(std::make_unique<SafetensorsReader>(single));
    for (const SafetensorsEntry& e : files.readers.back()->tensors())
      files.tensor_file[e.name] = files.readers.back().get();
    return files;
  }
  QWEN3_CHECK(is_file(index), "{}: neither {} nor {} is there", dir, kWeightsFile, kIndexFile);
  files.where = index;
  const json root = parse_json_file(index);
  QWEN3_CHECK(root.is_object() && root.contains("weight_map") && root["weight_map"].is_object(),
              "{}: expected an object with a \"weight_map\" object of tensor name -> shard file",
              index);
  std::map<std::string, const SafetensorsReader*> by_shard;
  for (const auto& [tensor, shard_value] : root["weight_map"].items()) {
    QWEN3_CHECK(shard_value.is_string(), "{}: weight_map['{}'] must be a file name, got {}", index,
                tensor, shard_value.dump());
    const std::string shard = shard_value.get<std::string>();
    check_shard_name(index, tensor, shard);
    auto it = by_shard.find(shard);
    if (it == by_shard.end()) {
      const std::string path = join(dir, shard);
      QWEN3_CHECK(is_file(path), "{}: shard '{}' (holding tensor '{}') does not exist", index, path,
                  tensor);
      files.readers.push_back(std::make_unique<SafetensorsReader>(path));
      it = by_shard.emplace(shard, files.readers.back().get()).first;
    }
    QWEN3_CHECK(it->second->find(tensor) != nullptr,
                "{}: weight_map puts tensor '{}' in {}, which does not hold it", index, tensor,
                it->second->path());
    files.tensor_file[tensor] = it->second;
  }
  // A tensor in a shard but not in the index would be dropped by transformers' loader.
  for (const auto& reader : files.readers)
    for (const SafetensorsEntry& e : reader->tensors()) {
      const auto listed = files.tensor_file.find(e.name);
      QWEN3_CHECK(listed != files.tensor_file.end() && listed->second == reader.get(),
                  "{}: holds tensor '{}', which {} does not map to this file", reader->path(),
                  e.name, index);
    }
  return files;
}

std::vector<int64_t> dims(const Shape& shape) {
  std::vector<int64_t> out;
  for (int i = 0; i < shape.rank(); ++i)
    out.push_back(shape[i]);
  return out;
}

// The shape and dtype `entry` must have in the file; throws naming the file and tensor.
void check_tensor(const SafetensorsReader& file, const ParamEntry& entry, const char* stored_as) {
  const SafetensorsEntry& t = file.at(stored_as);
  QWEN3_CHECK(t.dtype == "F32" || t.dtype == "BF16" || t.dtype == "F16",
              "{}: tensor '{}' is {}; weights load from F32, BF16 or F16", file.path(), stored_as,
              t.dtype);
  QWEN3_CHECK(t.shape == dims(entry.shape),
              "{}: tensor '{}' has shape {}, but the model's config gives it shape {}", file.path(),
              stored_as, t.shape_str(), entry.shape.str());
}

// A tied model computes its logits with the embedding; a different lm_head.weight in the file
// would be dropped without a word, and the loaded model would not be the saved one.
void check_tied_head(const SafetensorsReader& file, const std::vector<float>& flat,
                     const ParamEntry& embed) {
  constexpr int64_t kChunk = int64_t(1) << 20;
  std::vector<float> chunk(size_t(std::min(kChunk, embed.numel())));
  for (int64_t first = 0; first < embed.numel(); first += kChunk) {
    const int64_t n = std::min(kChunk, embed.numel() - first);
    file.read_f32("lm_head.weight", chunk.data(), first, n);
    const float* expected = flat.data() + embed.offset + first;
    for (int64_t i = 0; i < n; ++i)
      QWEN3_CHECK(
          std::memcmp(&chunk[size_t(i)], &expected[i], sizeof(float)) == 0,
          "{}: lm_head.weight differs from model.embed_tokens.weight (element {}: {} vs "
          "{}), but the model's config ties them (tie_word_embeddings true), so the head would "
          "be dropped; set tie_word_embeddings to false to load a separate head",
          file.path(), first + i, chunk[size_t(i)], expected[i]);
  }
}

}  // namespace

bool is_hf_model_dir(const std::string& dir) {
  return is_file(join(dir, kConfigFile)) &&
         (is_file(join(dir, kWeightsFile)) || is_file(join(dir, kIndexFile)));
}

ModelConfig load_hf_config(const std::string& dir) {
  const std::string path = join(dir, kConfigFile);
  json root = parse_json_file(path);
  QWEN3_CHECK(root.is_object(), "{}: expected a JSON object of config keys, got {}", path,
              root.type_name());
  ConfigJson c(path, std::move(root));
  ModelConfig config;
  // First, so that another architecture's config is named as such rather than as a missing key.
  c.read("model_type", config.model_type, true);
  if (config.model_type != "qwen3")
    c.fail("model_type", "is '" + config.model_type + "'; only 'qwen3' is supported");
  c.read("vocab_size", config.vocab_size, true);
  c.read("hidden_size", config.hidden_size, true);
  c.read("intermediate_size", config.intermediate_size, true);
  c.read("num_hidden_layers", config.num_hidden_layers, true);
  c.read("num_attention_heads", config.num_attention_heads, true);
  c.read("num_key_value_heads", config.num_key_value_heads, true);
  c.read("head_dim", config.head_dim, true);
  c.read("max_position_embeddings", config.max_position_embeddings, true);
  c.read("rms_norm_eps", config.rms_norm_eps, true);
  read_rope_theta(c, config.rope_theta);
  c.read("tie_word_embeddings", config.tie_word_embeddings, true);
  c.read("initializer_range", config.initializer_range, false, 0.02);
  c.read("hidden_act", config.hidden_act, false, std::string("silu"));
  c.read("attention_bias", config.attention_bias, false, false);
  check_unsupported_settings(c);
  if (c.has("layer_types"))  // checked above: a list of implemented kinds, one per layer
    for (const json& t : c.value("layer_types"))
      config.layer_types.push_back(t.get<std::string>());
  for (const auto& item : c.root().items())
    if (!c.used(item.key()) && !ignored_config_keys().count(item.key()))
      c.fail(item.key(),
             "is not a Qwen3 config key this trainer knows; it may change the model, so it is "
             "refused rather than ignored");
  validate_model_config(config, path);
  const fs::path normal = fs::path(dir).lexically_normal();
  config.name =
      (normal.has_filename() ? normal.filename() : normal.parent_path().filename()).string();
  return config;
}

void save_hf_model(const Qwen3Model& model, const std::string& dir, DType dtype) {
  QWEN3_CHECK(dtype == DType::F32 || dtype == DType::BF16,
              "{}: HF models are saved in F32 or BF16, not {}", dir, dtype_name(dtype));
  std::error_code ec;
  QWEN3_CHECK(fs::is_directory(dir, ec), "{}: not a directory (create it before saving)", dir);
  const ParamLayout& layout = model.layout();
  const std::vector<float> host = model.params_to_host();  // [flat_size]
  std::vector<SafetensorsTensor> tensors;
  // A tied layout has no lm_head entry, so the file has none either, as transformers writes it.
  for (const ParamEntry& e : layout.entries())
    tensors.push_back({e.name, dtype, dims(e.shape), host.data() + e.offset});
  write_safetensors(join(dir, kWeightsFile), tensors, {{"format", "pt"}});
  // Last, so that a directory with this config.json already has its weights; write_file_atomic
  // fsyncs the directory, which also makes model.safetensors' creation durable.
  write_file_atomic(join(dir, kConfigFile), to_hf_config_json(model.config(), dtype));
}

void load_hf_weights(Qwen3Model& model, const std::string& dir) {
  const ParamLayout& layout = model.layout();
  const WeightFiles files = open_weight_files(dir);

  // Everything is checked before any data is read: a bad name or shape fails in milliseconds, not
  // after gigabytes.
  for (const ParamEntry& e : layout.entries()) {
    const auto it = files.tensor_file.find(e.name);
    if (it == files.tensor_file.end()) {
      QWEN3_CHECK(e.name != "lm_head.weight",
                  "{}: missing tensor 'lm_head.weight' (shape {}); the model's config sets "
                  "tie_word_embeddings false, so it needs its own head",
                  files.where, e.shape.str());
      throw_error(
          fmt::format("{}: missing tensor '{}' (shape {})", files.where, e.name, e.shape.str()));
    }
    check_tensor(*it->second, e, e.name.c_str());
  }
  const ParamEntry& embed = layout[layout.embed_tokens()];
  const auto tied_head =
      layout.tied() ? files.tensor_file.find("lm_head.weight") : files.tensor_file.end();
  if (tied_head != files.tensor_file.end())
    check_tensor(*tied_head->second, embed, "lm_head.weight");
  std::vector<std::string> unexpected;
  for (const auto& [name, file] : files.tensor_file)
    if (!layout.contains(name) && !(layout.tied() && name == "lm_head.weight"))
      unexpected.push_back(file->path() + ": '" + name + "'");
  QWEN3_CHECK(unexpected.empty(),
              "{}: {} tensor(s) that the model (per its config) does not have: {}{}", files.where,
              unexpected.size(),
              fmt::join(unexpected.begin(),
                        unexpected.begin() + std::min<size_t>(5, unexpected.size()), ", "),
              unexpected.size() > 5 ? ", ..." : "");

  std::vector<float> flat(size_t(layout.flat_size()), 0.0f);  // alignment padding stays zero
  for (const ParamEntry& e : layout.entries())
    files.tensor_file.at(e.name)->read_f32(e.name, flat.data() + e.offset, 0, e.numel());
  if (tied_head != files.tensor_file.end()) check_tied_head(*tied_head->second, flat, embed);
  model.load_params(flat);
}

}  // namespace qwen3
