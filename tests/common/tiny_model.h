#pragma once
// The tiny model the training tests use (configs/models/tiny.yaml: 2 layers, d = 64, 4 query and
// 2 KV heads of 16): found through QWEN3_SOURCE_DIR, which the tests' CMake defines.
#include <string>

#include "core/model/config.h"

namespace qwen3::test_data {

inline ModelConfig tiny_model_config() {
  return load_model_config(std::string(QWEN3_SOURCE_DIR) + "/configs/models/tiny.yaml");
}

}  // namespace qwen3::test_data
