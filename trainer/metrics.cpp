#include "trainer/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/model/param_layout.h"
#include "core/util/error.h"
#include "core/util/file_io.h"

namespace qwen3 {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step) : path_(path) {
  std::ifstream in(path);
  if (in.good()) {
    std::string kept, line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: a line torn by a crash
      try {
        const nlohmann::json j = nlohmann::json::parse(line);
        if (j.contains("step") && j["step"].get<int64_t>() <= resume_step) kept += line + "\n";
      } catch (const nlohmann::json::exception&) {
        // An unparseable line can only be a torn one; the resumed run logs that step again.
      }
    }
    write_file_atomic(path, kept);
  }
  file_ = std::fopen(path.c_str(), "a");
  QWEN3_CHECK(file_ != nullptr, "cannot open metrics file '{}': {}", path, std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append(const std::string& json_object) {
  QWEN3_CHECK(std::fputs(json_object.c_str(), file_) >= 0 && std::fputc('\n', file_) != EOF &&
                  std::fflush(file_) == 0,
              "writing metrics file '{}' failed: {}", path_, std::strerror(errno));
}

double train_flops_per_token(const ModelConfig& config, int64_t seq_len) {
  const ParamLayout layout(config);
  // Matrix-multiply weights: the linear layers and the LM head (a tied head is the embedding,
  // whose product is computed all the same); not the lookup, not the norms.
  double matmul_weights = 0.0;
  for (const ParamEntry& e : layout.entries())
    if (e.attributes.flops == FlopRole::Matmul) matmul_weights += double(e.numel());
  // Attention's two T×T products per full-attention layer: 6 · 2 · heads · head_dim · T per token
  // (forward and backward, causal masking not discounted, as in the PaLM and Megatron counts).
  double attention = 0.0;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    if (config.layer_type(l) == "full_attention")
      attention += 12.0 * config.num_attention_heads * config.head_dim * double(seq_len);
  return 6.0 * matmul_weights + attention;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace qwen3
