// qwen3-train: the training program. This version describes a model; training runs arrive with the
// run-file and trainer issues.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/model/config.h"
#include "core/util/error.h"
#include "trainer/describe.h"

namespace {

constexpr int kExitError = 1;  // bad input or a failure: the message says which
constexpr int kExitUsage = 2;  // the command line itself is wrong

void print_usage(FILE* to) {
  std::fprintf(to,
               "usage: qwen3-train --describe MODEL.yaml   parameter table and memory estimates\n"
               "       qwen3-train --model-options         every model YAML key, typed, with help\n"
               "       qwen3-train --help\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    print_usage(stdout);
    return 0;
  }
  if (argc == 2 && !std::strcmp(argv[1], "--model-options")) {
    std::printf("Model YAML keys (Hugging Face config.json names):\n%s",
                qwen3::model_config_help().c_str());
    return 0;
  }
  if (argc != 3 || std::strcmp(argv[1], "--describe") != 0) {
    print_usage(stderr);
    return kExitUsage;
  }
  try {
    const std::string path = argv[2];
    const qwen3::ModelConfig config = qwen3::load_model_config(path);
    std::fputs(qwen3::describe_model(config, path).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-train: error: %s\n", e.what());
    return kExitError;
  }
}
