// The flat parameter layout: HF names, the published parameter counts, aligned and disjoint views.
#include <gtest/gtest.h>

#include "core/model/config.h"
#include "core/model/param_layout.h"
#include "core/util/error.h"

namespace {

const std::string kConfigs = std::string(QWEN3_SOURCE_DIR) + "/configs/models/";

TEST(ParamLayout, Qwen3_0_6B_Counts) {
  const qwen3::ParamLayout layout(qwen3::load_model_config(kConfigs + "qwen3-0.6b.yaml"));
  EXPECT_EQ(layout.unique_parameters(), 596049920);
  EXPECT_EQ(layout.parameters_if_untied(), 751632384);
  EXPECT_EQ(layout.non_embedding_parameters(), 440467456);
  EXPECT_EQ(layout.layer_parameters(), 15730944);
  EXPECT_EQ(layout.layer_parameters(27), 15730944);
  EXPECT_EQ(layout.decoder_parameters(), 28 * 15730944);
  EXPECT_TRUE(layout.tied());
  EXPECT_EQ(layout.lm_head(), layout.embed_tokens());
  // 1 embedding + 28 layers x 11 tensors + final norm, no separate head.
  EXPECT_EQ(layout.entries().size(), 1u + 28u * 11u + 1u);
}

TEST(ParamLayout, SeedThreeLayerVariantCounts) {
  const qwen3::ParamLayout layout(qwen3::load_model_config(kConfigs + "qwen3-3layer-v1519.yaml"));
  EXPECT_EQ(layout.parameters_if_untied(), 50304768);  // the seed's torchinfo total
  EXPECT_EQ(layout.unique_parameters(), 48749312);
  EXPECT_EQ(layout.layer_parameters(), 15730944);
}

TEST(ParamLayout, HfNamesShapesAndAlignment) {
  const qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + "tiny-untied.yaml");
  const qwen3::ParamLayout layout(c);
  EXPECT_EQ(layout.find("model.embed_tokens.weight").shape, qwen3::Shape({1000, 48}));
  EXPECT_EQ(layout.find("model.layers.2.self_attn.q_proj.weight").shape, qwen3::Shape({64, 48}));
  EXPECT_EQ(layout.find("model.layers.2.self_attn.k_proj.weight").shape, qwen3::Shape({32, 48}));
  EXPECT_EQ(layout.find("model.layers.0.self_attn.o_proj.weight").shape, qwen3::Shape({48, 64}));
  EXPECT_EQ(layout.find("model.layers.1.self_attn.q_norm.weight").shape, qwen3::Shape({16}));
  EXPECT_EQ(layout.find("model.layers.1.mlp.down_proj.weight").shape, qwen3::Shape({48, 128}));
  EXPECT_EQ(layout.find("model.norm.weight").shape, qwen3::Shape({48}));
  EXPECT_EQ(layout.find("lm_head.weight").shape, qwen3::Shape({1000, 48}));
  EXPECT_FALSE(layout.tied());
  EXPECT_NE(layout.lm_head(), layout.embed_tokens());
  EXPECT_THROW(layout.find("model.layers.3.mlp.up_proj.weight"), qwen3::Error);

  int64_t end = 0;
  for (const qwen3::ParamEntry& e : layout.entries()) {
    const bool follows_in_a_group = e.component == "self_attn.k_proj" ||
                                    e.component == "self_attn.v_proj" ||
                                    e.component == "mlp.up_proj";
    if (follows_in_a_group)
      EXPECT_EQ(e.offset, end) << e.name << " does not follow its group's previous tensor";
    else
      EXPECT_EQ(e.offset % qwen3::ParamLayout::kAlignElements, 0) << e.name;
    EXPECT_GE(e.offset, end) << e.name << " overlaps the previous tensor";
    end = e.offset + e.numel();
  }
  EXPECT_LE(end, layout.flat_size());
}

// A fused projection's weights are one matrix even where the first's size is not a multiple of
// the alignment (here 40 × 24 = 960 elements, 15 · 64; 20 × 24 = 480, 7.5 · 64): k_proj and v_proj
// follow q_proj at once, up_proj follows gate_proj, and the tensor after each group is aligned
// again.
TEST(ParamLayout, FusedProjectionsAreBackToBackWhateverTheirSize) {
  qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + "tiny.yaml");
  c.hidden_size = 24;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 10;
  c.intermediate_size = 20;
  const qwen3::ParamLayout layout(c);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const auto at = [&](const char* component) { return layout[layout.index(l, component)]; };
    auto end_of = [&](const char* component) {
      return at(component).offset + at(component).numel();
    };
    EXPECT_EQ(at("self_attn.k_proj").offset, end_of("self_attn.q_proj"));
    EXPECT_EQ(at("self_attn.v_proj").offset, end_of("self_attn.k_proj"));
    EXPECT_EQ(at("mlp.up_proj").offset, end_of("mlp.gate_proj"));
    EXPECT_EQ(at("mlp.up_proj").offset % qwen3::ParamLayout::kAlignElements, 480 % 64);
    EXPECT_EQ(at("self_attn.q_norm").offset % qwen3::ParamLayout::kAlignElements, 0);
    EXPECT_EQ(at("mlp.down_proj").offset % qwen3::ParamLayout::kAlignElements, 0);
  }
}

// What the backward pass's gradients-final announcements rely on: each layer's tensors fill
// [layer_begin(l), layer_begin(l + 1)), the final norm and an untied head come after the last
// layer, the embedding before the first.
TEST(ParamLayout, LayersAreContiguousSlicesBetweenEmbeddingAndFinalNorm) {
  for (const char* model : {"tiny.yaml", "tiny-untied.yaml"}) {
    const qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + model);
    const qwen3::ParamLayout layout(c);
    for (const qwen3::ParamEntry& e : layout.entries()) {
      if (e.layer < 0) continue;
      const int64_t end = e.layer + 1 < c.num_hidden_layers ? layout.layer_begin(e.layer + 1)
                                                            : layout[layout.final_norm()].offset;
      EXPECT_GE(e.offset, layout.layer_begin(e.layer)) << model << ": " << e.name;
      EXPECT_LE(e.offset + e.numel(), end) << model << ": " << e.name;
    }
    const qwen3::ParamEntry& embed = layout[layout.embed_tokens()];
    EXPECT_LE(embed.offset + embed.numel(), layout.layer_begin(0)) << model;
    EXPECT_GE(layout[layout.lm_head()].offset,
              layout.tied() ? 0 : layout[layout.final_norm()].offset)
        << model;
  }
}

// Each tensor's attributes: how it starts, whether the FLOP count sees a product, and whether it is
// one of the decoder's matrices (a matrix rule's tensors).
TEST(ParamLayout, AttributesSayInitFlopsAndDecoderMatrices) {
  qwen3::ModelConfig c = qwen3::load_model_config(kConfigs + "qwen3-0.6b.yaml");
  for (bool tied : {true, false}) {
    c.tie_word_embeddings = tied;
    const qwen3::ParamLayout layout(c);
    int matrices = 0;
    for (const qwen3::ParamEntry& e : layout.entries()) {
      const qwen3::ParamAttributes& a = e.attributes;
      const bool norm = e.name.find("norm") != std::string::npos;
      EXPECT_EQ(a.init == qwen3::InitRule::Ones, norm) << e.name;
      EXPECT_EQ(a.hidden_matrix, e.layer >= 0 && !norm) << e.name;
      matrices += a.hidden_matrix;
      const bool product = !norm && (e.name != "model.embed_tokens.weight" || tied);
      EXPECT_EQ(a.flops == qwen3::FlopRole::Matmul, product) << e.name << (tied ? " tied" : "");
    }
    EXPECT_EQ(matrices, 7 * c.num_hidden_layers);
  }
}

TEST(ParamLayout, TiedHeadResolvesToEmbedding) {
  const qwen3::ParamLayout layout(qwen3::load_model_config(kConfigs + "tiny.yaml"));
  EXPECT_EQ(&layout.find("lm_head.weight"), &layout.find("model.embed_tokens.weight"));
  EXPECT_FALSE(layout.contains("lm_head.weight"));
}

}  // namespace
