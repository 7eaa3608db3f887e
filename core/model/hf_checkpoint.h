#pragma once
// Hugging Face model directories: config.json plus model.safetensors (or a sharded
// model.safetensors.index.json with its shards), as transformers' save_pretrained writes them and
// from_pretrained reads them. Tensor names are ParamLayout's, which are HF's state-dict keys.
#include <string>

#include "core/model/config.h"
#include "core/model/qwen3_model.h"
#include "core/tensor/tensor.h"

namespace qwen3 {

// True when `dir` holds a config.json and model.safetensors or model.safetensors.index.json.
bool is_hf_model_dir(const std::string& dir);

// Reads `dir`/config.json into a ModelConfig and validates it like a model YAML. Keys that do not
// change the computation (architectures, torch_dtype, transformers_version, bos/eos ids, use_cache,
// ...) are accepted and ignored; settings this trainer does not implement (rope_scaling, an active
// sliding window, attention_bias true, another model_type) are refused, naming the key.
ModelConfig load_hf_config(const std::string& dir);

// Writes `dir`/config.json (to_hf_config_json) and `dir`/model.safetensors with every parameter
// in `dtype` (F32 or BF16; use the model's storage dtype for an exact resume). A tied model is
// written without lm_head.weight, as transformers writes it. Both files are fsynced. `dir` must
// exist.
void save_hf_model(const Qwen3Model& model, const std::string& dir, DType dtype);

// Loads every parameter of `model` from `dir`'s safetensors (F32, BF16 or F16, converted to the
// model's storage dtype). lm_head.weight is optional for a tied model: when present it must equal
// the embedding. Throws, naming the file and tensor, for a missing, unexpected or mis-shaped
// tensor.
void load_hf_weights(Qwen3Model& model, const std::string& dir);

}  // namespace qwen3
