#include "trainer/describe.h"

#include <vector>

#include <fmt/format.h>

#include "core/model/activations.h"
#include "core/model/param_layout.h"
#include "core/util/format.h"

namespace qwen3 {

namespace {

std::string shape_text(const Shape& s) {
  std::string out;
  for (int i = 0; i < s.rank(); ++i)
    out += (i ? " x " : "") + std::to_string(s[i]);
  return out;
}

void append_parameters(std::string& out, const ModelConfig& c, const ParamLayout& layout) {
  auto row = [&](const std::string& name, const std::string& shape, const std::string& count) {
    out += fmt::format("  {:<42} {:>16} {:>15}\n", name, shape, count);
  };
  out += "Parameters\n";
  row("component", "shape", "parameters");
  const ParamEntry& embed = layout[layout.embed_tokens()];
  row(embed.name, shape_text(embed.shape), with_commas(embed.numel()));
  // Runs of consecutive layers of one kind, each listed by its first layer's tensors.
  for (int64_t first = 0; first < c.num_hidden_layers;) {
    int64_t end = first + 1;
    while (end < c.num_hidden_layers && c.layer_type(end) == c.layer_type(first))
      ++end;
    out += fmt::format("  per decoder layer, layers {}-{} ({}, x {}):\n", first, end - 1,
                       c.layer_type(first), end - first);
    for (const ParamEntry& e : layout.entries())
      if (e.layer == first)
        row("  " + e.component + ".weight", shape_text(e.shape), with_commas(e.numel()));
    row("  layer total", "", with_commas(layout.layer_parameters(static_cast<int>(first))));
    first = end;
  }
  row(fmt::format("{} decoder layers", c.num_hidden_layers), "",
      with_commas(layout.decoder_parameters()));
  const ParamEntry& norm = layout[layout.final_norm()];
  row(norm.name, shape_text(norm.shape), with_commas(norm.numel()));
  if (layout.tied())
    row("lm_head.weight", shape_text(embed.shape), "tied to embed");
  else
    row("lm_head.weight", shape_text(embed.shape), with_commas(layout[layout.lm_head()].numel()));
  out += "\n";
  row("unique parameters", "", with_commas(layout.unique_parameters()));
  row(layout.tied() ? "if the head were untied" : "with the head counted separately", "",
      with_commas(layout.parameters_if_untied()));
  row("without the embedding", "", with_commas(layout.non_embedding_parameters()));
}

void append_memory(std::string& out, const ModelConfig& c, const ParamLayout& layout) {
  const double p = double(layout.unique_parameters());
  const PrecisionPlan plans[] = {kFp32Plan, kMixedPlan, kMixedBf16GradsPlan};
  // One cell per plan; a negative value prints as "-".
  auto row = [&](const std::string& what, const std::vector<double>& cells) {
    out += fmt::format("  {:<42}", what);
    for (double v : cells)
      out += fmt::format(" {:>18}", v < 0 ? "-" : human_bytes(v));
    out += "\n";
  };
  out +=
      "\nMemory per replica, before ZeRO sharding (ZeRO divides optimizer state, and with stage 2\n"
      "gradients, by the number of ranks); the CUDA backend runs bf16 with grad_dtype fp32 (the\n"
      "default) or bf16\n";
  out += fmt::format("  {:<42}", "");
  for (const PrecisionPlan& plan : plans)
    out += fmt::format(" {:>18}", plan.name);
  out += "\n";
  auto per_param = [&](const char* what, int PrecisionPlan::*field, bool absent_when_zero) {
    std::vector<double> cells;
    for (const PrecisionPlan& plan : plans)
      cells.push_back(absent_when_zero && plan.*field == 0 ? -1 : p * (plan.*field));
    row(what, cells);
  };
  per_param("weights", &PrecisionPlan::weight_bytes, false);
  per_param("fp32 master weights", &PrecisionPlan::master_bytes, true);
  per_param("gradients", &PrecisionPlan::gradient_bytes, false);
  per_param("AdamW state (m, v in fp32)", &PrecisionPlan::optimizer_bytes, false);
  std::vector<double> totals;
  for (const PrecisionPlan& plan : plans)
    totals.push_back(p * plan.bytes_per_parameter());
  row("total", totals);
  out += fmt::format("  {:<42}", "bytes per parameter");
  for (const PrecisionPlan& plan : plans)
    out += fmt::format(" {:>18}", plan.bytes_per_parameter());
  out += "\n";

  // Activations kept for the backward pass, from the same layout the model allocates: fp32 on the
  // CPU, bf16 on the GPU whatever the gradients' dtype.
  const ActivationLayout fp32_acts(c, 1, 1, DType::F32), bf16_acts(c, 1, 1, DType::BF16);
  const auto saved = ActivationRole::Saved;
  out += "\nActivations saved for backward, per token (without recomputation)\n";
  out += fmt::format("  {:<42} {:>18} {:>18}\n", "", "fp32", "bf16");
  const double layers32 = double(fp32_acts.bytes_of(saved, true));
  const double layers16 = double(bf16_acts.bytes_of(saved, true));
  row("one decoder layer", {layers32 / c.num_hidden_layers, layers16 / c.num_hidden_layers});
  row(fmt::format("{} decoder layers", c.num_hidden_layers), {layers32, layers16});
  const double head32 = double(fp32_acts.bytes_of(saved)) - layers32;
  const double head16 = double(bf16_acts.bytes_of(saved)) - layers16;
  row(fmt::format("final norm + logits ({} per token)", with_commas(c.vocab_size)),
      {head32, head16});
  row("total per token", {layers32 + head32, layers16 + head16});
  const int64_t seq = std::min<int64_t>(4096, c.max_position_embeddings);
  row(fmt::format("one {}-token sequence", with_commas(seq)),
      {(layers32 + head32) * seq, (layers16 + head16) * seq});
}

}  // namespace

std::string describe_model(const ModelConfig& c, const std::string& source) {
  const ParamLayout layout(c);
  std::string out = fmt::format("{} ({})\n", c.name.empty() ? "Qwen3 model" : c.name, source);
  out += fmt::format(
      "  vocab {}, hidden {}, intermediate {}, {} layers, {} query / {} KV heads (GQA {}), "
      "head_dim {}\n  RMSNorm eps {}, RoPE theta {}, max positions {}, {} embeddings\n\n",
      with_commas(c.vocab_size), with_commas(c.hidden_size), with_commas(c.intermediate_size),
      c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.gqa_group(), c.head_dim,
      c.rms_norm_eps, with_commas(static_cast<int64_t>(c.rope_theta)),
      with_commas(c.max_position_embeddings), c.tie_word_embeddings ? "tied" : "untied");
  append_parameters(out, c, layout);
  append_memory(out, c, layout);
  return out;
}

}  // namespace qwen3
