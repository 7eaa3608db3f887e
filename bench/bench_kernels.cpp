// qwen3-bench-kernels: every op of the CUDA backend at Qwen3-0.6B's shapes, timed against its
// roofline, one line per op in a Markdown table (docs/kernels.md holds the latest). The roofline
// is the time the op's unavoidable traffic (bytes over the memory bandwidth) or arithmetic (FLOPs
// over the bf16 tensor-core peak) takes; the last column is roofline / measured.
//
//   qwen3-bench-kernels [--tokens N] [--seq T] [--iters K] [--ops NAME] [--json FILE]
//
// --ops times only the ops whose name contains NAME (--ops attention --tokens 32768 --seq 32768:
// the attention kernels at 32K). The achieved column is TFLOP/s for compute-bound ops, causal
// attention counting the causal half of the scores, and TB/s for memory-bound ones.
// --json also writes every row (op, shape, seconds, bound, roofline seconds) to FILE, for
// scripts/gpu-check.sh's report.
// Without a GPU it says why and exits 77 (nothing to measure).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/device.h"
#include "core/cuda/device_peaks.h"
#include "core/ops/cuda_backend.h"
#include "core/util/file_io.h"
#include "core/util/rng.h"

namespace {

using namespace qwen3;

struct Peaks {
  double bytes_per_s = 0, flops = 0;
};

// The datasheet table by device name (device_peaks.h); for a device not in it, the bandwidth the
// runtime's memory clock implies, where it still reports one, and no compute roofline.
Peaks roofline_peaks(const cuda::DeviceInfo& info) {
  Peaks p;
  if (const std::optional<cuda::DevicePeaks> sheet = cuda::device_peaks(info.name)) {
    p.flops = sheet->bf16_dense_flops;
    p.bytes_per_s = sheet->memory_bytes_per_s;
  } else if (info.memory_clock_khz > 0) {  // double data rate
    p.bytes_per_s = 2.0 * info.memory_clock_khz * 1e3 * info.memory_bus_bits / 8.0;
  }
  return p;
}

class Bench {
 public:
  // Only ops whose name contains `only` are timed (all when empty).
  Bench(Backend& backend, const Peaks& peaks, int iters, std::string only)
      : backend_(backend), peaks_(peaks), iters_(iters), only_(std::move(only)) {
    std::printf("| op | shape | time (µs) | bound | achieved | roofline (µs) | of roofline |\n");
    std::printf("|---|---|---:|---|---:|---:|---:|\n");
  }

  TensorView tensor(DType dtype, Shape shape, double std = 1.0, uint64_t stream = 0) {
    buffers_.push_back(backend_.allocate(size_t(shape.numel()) * dtype_size(dtype) + 256));
    TensorView v = buffers_.back()->view(dtype, shape);
    std::vector<float> values(size_t(shape.numel()));
    fill_normal(values.data(), shape.numel(), 0.0, std, 99, stream);
    if (dtype == DType::I32) {
      std::vector<int32_t> ids(values.size());
      for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = static_cast<int32_t>(random_bits(99, stream, i) % 1000);
      backend_.upload(ids.data(), v);
    } else {
      backend_.upload(values.data(), v);
    }
    return v;
  }

  // `bytes` or `flops` (one of them non-zero) define the roofline.
  void time(const std::string& op, const std::string& shape, double bytes, double flops,
            const std::function<void()>& run) {
    if (op.find(only_) == std::string::npos) return;
    run();  // warm-up: GEMM plans, scratch growth, clocks
    backend_.synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters_; ++i)
      run();
    backend_.synchronize();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters_;
    const bool compute = flops > 0;
    const double peak = compute ? peaks_.flops : peaks_.bytes_per_s;
    const double roofline = peak > 0 ? (compute ? flops : bytes) / peak : 0.0;
    // TFLOP/s for compute-bound ops (attention: counting the causal half), TB/s for the others.
    const std::string achieved = fmt::format(
        "{:.1f} {}", (compute ? flops : bytes) / seconds / 1e12, compute ? "TFLOP/s" : "TB/s");
    std::printf(
        "| %s | %s | %.1f | %s | %s | %s | %s |\n", op.c_str(), shape.c_str(), seconds * 1e6,
        compute ? "compute" : "memory", achieved.c_str(),
        roofline > 0 ? std::to_string(roofline * 1e6).substr(0, 7).c_str() : "n/a",
        roofline > 0 ? (std::to_string(int(100 * roofline / seconds + 0.5)) + "%").c_str() : "n/a");
    std::fflush(stdout);
    rows_.push_back(
        fmt::format("{{\"op\": \"{}\", \"shape\": \"{}\", \"seconds\": {:.9g}, \"bound\": \"{}\", "
                    "\"roofline_seconds\": {:.9g}}}",
                    op, shape, seconds, compute ? "compute" : "memory", roofline));
  }

  // The rows so far as one JSON document.
  std::string json(const std::string& device) const {
    std::string out = fmt::format(
        "{{\"device\": \"{}\", \"bf16_peak_flops\": {:.6g}, "
        "\"memory_bytes_per_s\": {:.6g}, \"rows\": [\n",
        device, peaks_.flops, peaks_.bytes_per_s);
    for (size_t i = 0; i < rows_.size(); ++i)
      out += "  " + rows_[i] + (i + 1 < rows_.size() ? ",\n" : "\n");
    return out + "]}\n";
  }

 private:
  Backend& backend_;
  Peaks peaks_;
  int iters_;
  std::string only_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<std::string> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t tokens = 8192, seq = 4096, iters = 20;
  std::string json_path, only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--json" || key == "--ops") {
      (key == "--json" ? json_path : only) = argv[i + 1];
      continue;
    }
    const int64_t value = std::stoll(argv[i + 1]);
    if (key == "--tokens")
      tokens = value;
    else if (key == "--seq")
      seq = value;
    else if (key == "--iters")
      iters = value;
    else {
      std::fprintf(stderr,
                   "usage: qwen3-bench-kernels [--tokens N] [--seq T] [--iters K] [--ops NAME] "
                   "[--json FILE]\n");
      return 2;
    }
  }
  std::string reason;
  if (!cuda_backend_available(&reason)) {
    std::printf("qwen3-bench-kernels: nothing to measure: %s\n", reason.c_str());
    return 77;
  }
  try {
    auto backend = make_cuda_backend(0);
    const cuda::DeviceInfo info = cuda::query_device(0);
    const Peaks peaks = roofline_peaks(info);
    std::printf("%s: bf16 peak %.0f TFLOP/s, memory %.2f TB/s; %lld tokens, sequences of %lld\n\n",
                info.name.c_str(), peaks.flops / 1e12, peaks.bytes_per_s / 1e12,
                static_cast<long long>(tokens), static_cast<long long>(seq));
    Bench b(*backend, peaks, static_cast<int>(iters), only);
    Backend& be = *backend;
    // Qwen3-0.6B.
    const int64_t n = tokens, d = 1024, hq = 16, hkv = 8, hd = 128, inter = 3072, vocab = 151936;
    const int64_t batch = std::max<int64_t>(1, n / seq);
    const DType bf = DType::BF16;
    const std::string nd = std::to_string(n) + "×" + std::to_string(d);

    auto tokens_v = b.tensor(DType::I32, {n}, 1, 1);
    auto table = b.tensor(bf, {vocab, d}, 0.02, 2);
    auto x = b.tensor(bf, {n, d}, 1, 3), y = b.tensor(bf, {n, d}, 1, 4);
    b.time("embedding_forward", nd, 4.0 * n * d, 0,
           [&] { be.embedding_forward(tokens_v, table, x); });
    b.time("embedding_backward", nd, 6.0 * n * d, 0,
           [&] { be.embedding_backward(tokens_v, x, table); });
    // Text's ids: roughly Zipf, the commonest ~6% of tokens (id = ⌊vocab^u⌋ − 1, u uniform), so
    // one token's rows are thousands of the micro-batch's.
    auto zipf_tokens = b.tensor(DType::I32, {n}, 1, 7);
    {
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (size_t i = 0; i < ids.size(); ++i) {
        const double u = double(random_bits(99, 8, i) >> 11) / double(uint64_t(1) << 53);
        ids[i] = std::min<int32_t>(int32_t(std::pow(double(vocab), u)) - 1, int32_t(vocab - 1));
      }
      be.upload(ids.data(), zipf_tokens);
    }
    b.time("embedding_backward (zipf ids)", nd, 6.0 * n * d, 0,
           [&] { be.embedding_backward(zipf_tokens, x, table); });
    // Into an fp32 table gradient (grad_dtype: fp32, the default): 8 bytes per touched element.
    auto table_grad32 = b.tensor(DType::F32, {vocab, d}, 0.02, 42);
    b.time("embedding_backward (zipf ids, fp32 grad)", nd, 10.0 * n * d, 0,
           [&] { be.embedding_backward(zipf_tokens, x, table_grad32); });

    auto norm_w = b.tensor(bf, {d}, 1, 5), rstd = b.tensor(DType::F32, {n}, 1, 6);
    b.time("rmsnorm_forward", nd, 4.0 * n * d, 0,
           [&] { be.rmsnorm_forward(x, norm_w, 1e-6f, y, rstd); });
    auto dw_norm = b.tensor(bf, {d}, 1, 7), dx = b.tensor(bf, {n, d}, 1, 8);
    b.time("rmsnorm_backward", nd, 6.0 * n * d, 0,
           [&] { be.rmsnorm_backward(y, x, norm_w, rstd, dx, false, dw_norm); });
    b.time("add", nd, 6.0 * n * d, 0, [&] { be.add(x, y, dx); });
    // Reads two [N, d] inputs, writes the sum and the normalised output.
    auto normed = b.tensor(bf, {n, d}, 1, 41);
    b.time("add_rmsnorm_forward", nd, 8.0 * n * d, 0,
           [&] { be.add_rmsnorm_forward(x, y, norm_w, 1e-6f, dx, normed, rstd); });

    // q_proj, k_proj and v_proj as the model runs them: one GEMM over their adjacent weights.
    const int64_t qkv_heads = hq + 2 * hkv, qkv_width = qkv_heads * hd;
    auto w_qkv = b.tensor(bf, {qkv_width, d}, 0.02, 9), qkv = b.tensor(bf, {n, qkv_width}, 1, 10);
    const double qkv_flops = 2.0 * n * d * qkv_width;
    b.time("linear_forward (qkv_proj)", nd + "→" + std::to_string(qkv_width), 0, qkv_flops,
           [&] { be.linear_forward(x, w_qkv, qkv); });
    auto dw_qkv = b.tensor(DType::F32, {qkv_width, d}, 0.02, 11);
    b.time("linear_backward (qkv_proj, fp32 dw)", nd + "→" + std::to_string(qkv_width), 0,
           2 * qkv_flops, [&] { be.linear_backward(qkv, x, w_qkv, &dx, false, dw_qkv); });
    // gate_proj and up_proj as the model runs them: one GEMM over their adjacent weights.
    auto w_gate_up = b.tensor(bf, {2 * inter, d}, 0.02, 12),
         gate_up = b.tensor(bf, {n, 2 * inter}, 1, 13), h = b.tensor(bf, {n, inter}, 1, 15);
    const double mlp_flops = 2.0 * n * d * inter;
    b.time("linear_forward (gate_up_proj)", nd + "→" + std::to_string(2 * inter), 0, 2 * mlp_flops,
           [&] { be.linear_forward(x, w_gate_up, gate_up); });
    auto dw_gate_up = b.tensor(DType::F32, {2 * inter, d}, 0.02, 47);
    b.time("linear_backward (gate_up_proj, fp32 dw)", nd + "→" + std::to_string(2 * inter), 0,
           4 * mlp_flops,
           [&] { be.linear_backward(gate_up, x, w_gate_up, &dx, false, dw_gate_up); });
    auto w_down = b.tensor(bf, {d, inter}, 0.02, 16), dw_down = b.tensor(bf, {d, inter}, 0.02, 17);
    b.time("linear_forward (down_proj)", std::to_string(n) + "×" + std::to_string(inter) + "→1024",
           0, mlp_flops, [&] { be.linear_forward(h, w_down, y); });
    auto dh = b.tensor(bf, {n, inter}, 1, 18);
    b.time("linear_backward (down_proj)", std::to_string(n) + "×" + std::to_string(inter) + "→1024",
           0, 2 * mlp_flops, [&] { be.linear_backward(y, h, w_down, &dh, false, dw_down); });
    auto dw_down32 = b.tensor(DType::F32, {d, inter}, 0.02, 43);
    b.time("linear_backward (down_proj, fp32 dw)",
           std::to_string(n) + "×" + std::to_string(inter) + "→1024", 0, 2 * mlp_flops,
           [&] { be.linear_backward(y, h, w_down, &dh, false, dw_down32); });
    const double ni = double(n) * inter;
    b.time("swiglu_forward", std::to_string(n) + "×" + std::to_string(inter), 6.0 * ni, 0,
           [&] { be.swiglu_forward(gate_up, h); });
    b.time("swiglu_backward", std::to_string(n) + "×" + std::to_string(inter), 10.0 * ni, 0,
           [&] { be.swiglu_backward(h, gate_up, gate_up); });

    auto positions = b.tensor(DType::I32, {n}, 1, 19);
    auto q_out = b.tensor(bf, {n, hq, hd}, 1, 39), k_out = b.tensor(bf, {n, hkv, hd}, 1, 44),
         v_out = b.tensor(bf, {n, hkv, hd}, 1, 45);
    b.time("rope_forward (q)", std::to_string(n) + "×16×128", 4.0 * n * hq * hd, 0,
           [&] { be.rope_forward(q_out, positions, 1e6, q_out); });
    auto qk_w = b.tensor(bf, {hd}, 1, 37), q_rstd = b.tensor(DType::F32, {n * hq}, 1, 38),
         k_rstd = b.tensor(DType::F32, {n * hkv}, 1, 46);
    auto dq_w = b.tensor(DType::F32, {hd}, 1, 40), dk_w = b.tensor(DType::F32, {hd}, 1, 48);
    const TensorView qkv3 = qkv.reshaped({n, qkv_heads, hd});
    auto d_qkv = b.tensor(bf, {n, qkv_heads, hd}, 1, 49);
    const auto qkv_norm_rope_forward = [&] {
      be.qkv_norm_rope_forward(qkv3, qk_w, qk_w, positions, 1e-6f, 1e6, q_out, k_out, v_out, q_rstd,
                               k_rstd);
    };
    // The backward's dq, dk, dv are the forward's outputs: any values serve for timing.
    const auto qkv_norm_rope_backward = [&] {
      be.qkv_norm_rope_backward(q_out, k_out, v_out, qkv3, qk_w, qk_w, q_rstd, k_rstd, positions,
                                1e6, d_qkv, dq_w, dk_w);
    };
    // Forward: reads q's and k's columns, writes them normalised and rotated; v read and written.
    // Backward: reads dy twice (dw partials, then dx) and x twice, writes dx; dv read and written.
    const double qk_elements = double(n) * (hq + hkv) * hd, v_elements = double(n) * hkv * hd;
    const double qkv_forward_bytes = 4.0 * (qk_elements + v_elements),
                 qkv_backward_bytes = 10.0 * qk_elements + 4.0 * v_elements;
    const std::string qkv_shape = std::to_string(n) + "×(16+8+8)×128";
    b.time("qkv_norm_rope_forward", qkv_shape, qkv_forward_bytes, 0, qkv_norm_rope_forward);
    b.time("qkv_norm_rope_backward", qkv_shape, qkv_backward_bytes, 0, qkv_norm_rope_backward);
    // The same rotations reading the batch's angle table (as the model runs them) beside the ones
    // above, which compute a powf and a sincosf per element; the table's making is timed too.
    b.time("rope_table", std::to_string(n) + "×64", 4.0 * n + 8.0 * n * hd / 2, 0,
           [&] { be.set_rope_positions(positions, 1e6, hd); });
    be.set_rope_positions(positions, 1e6, hd);  // whichever rows --ops picks
    const std::string shape = std::to_string(n) + "×16×128";
    b.time("rope_forward (q, angle table)", shape, 4.0 * n * hq * hd + 4.0 * n * hd, 0,
           [&] { be.rope_forward(q_out, positions, 1e6, q_out); });
    b.time("qkv_norm_rope_forward (angle table)", qkv_shape, qkv_forward_bytes + 4.0 * n * hd, 0,
           qkv_norm_rope_forward);
    b.time("qkv_norm_rope_backward (angle table)", qkv_shape, qkv_backward_bytes + 8.0 * n * hd, 0,
           qkv_norm_rope_backward);

    const Shape qs{batch, seq, hq, hd}, ks{batch, seq, hkv, hd};
    auto aq = b.tensor(bf, qs, 1, 20), ak = b.tensor(bf, ks, 1, 21), av = b.tensor(bf, ks, 1, 22);
    auto ao = b.tensor(bf, qs, 1, 23), alse = b.tensor(DType::F32, {batch, hq, seq}, 1, 24);
    // Causal: half of the T×T scores; 2 GEMMs of 2·T·T·hd FLOPs each per head.
    const double attn_flops = 4.0 * batch * hq * double(seq) * double(seq) * hd / 2;
    const std::string attn_shape =
        std::to_string(batch) + "×" + std::to_string(seq) + ", 16/8 heads";
    // Ours, then cuDNN's where the backend has it for this shape (the choice a stage's
    // `attention: auto` makes).
    auto adq = b.tensor(bf, qs, 1, 25), adk = b.tensor(bf, ks, 1, 26),
         adv = b.tensor(bf, ks, 1, 27);
    for (const char* kernels : {"flash", "cudnn"}) {
      const AttentionChoice choice = be.choose_attention({kernels, batch, seq, hq, hkv, hd, false});
      if (choice.kernels == "flash" && std::string(kernels) != "flash") {
        std::printf("(attention: no cuDNN row: %s)\n", choice.note.c_str());
        continue;
      }
      const std::string tag = " [" + choice.kernels + "]";
      b.time("attention_forward" + tag, attn_shape, 0, attn_flops,
             [&] { be.attention_forward(aq, ak, av, nullptr, ao, alse); });
      // Backward: 5 GEMMs of the forward's size (S, dV, dP, dQ, dK): 2.5× the FLOPs.
      b.time("attention_backward" + tag, attn_shape, 0, 2.5 * attn_flops,
             [&] { be.attention_backward(ao, aq, ak, av, ao, alse, nullptr, adq, adk, adv); });
    }
    be.choose_attention({"flash", batch, seq, hq, hkv, hd, false});

    const int64_t ce_rows = std::min<int64_t>(n, 4096);
    auto logits = b.tensor(bf, {ce_rows, vocab}, 2, 28);
    auto targets = b.tensor(DType::I32, {ce_rows}, 1, 29);
    auto losses = b.tensor(DType::F32, {ce_rows}, 1, 30),
         lse = b.tensor(DType::F32, {ce_rows}, 1, 31);
    const double logit_bytes = 2.0 * ce_rows * vocab;
    const std::string ce_shape = std::to_string(ce_rows) + "×151936";
    b.time("cross_entropy_forward", ce_shape, logit_bytes, 0,
           [&] { be.cross_entropy_forward(logits, targets, -100, losses, lse); });
    b.time("cross_entropy_backward", ce_shape, 2 * logit_bytes, 0,
           [&] { be.cross_entropy_backward(logits, lse, targets, -100, 1e-4f, logits); });
    b.time("cross_entropy_forward_backward (fused)", ce_shape, 3 * logit_bytes, 0, [&] {
      be.cross_entropy_forward_backward(logits, targets, -100, 1e-4f, losses, lse, logits);
    });
    // The whole LM head and loss over ce_rows tokens as the model ran it before the fusion (logits
    // made in the forward, made again in the backward, which is what a chunked head does) and as it
    // runs it now in training (made once, loss and gradient in one pass, the head's backward right
    // after), into an fp32 weight gradient. FLOPs: the head's GEMMs only.
    auto head_x = b.tensor(bf, {ce_rows, d}, 1, 44), head_dx = b.tensor(bf, {ce_rows, d}, 1, 45);
    auto head_dw = b.tensor(DType::F32, {vocab, d}, 0.02, 46);
    const double head_gemm = 2.0 * ce_rows * d * vocab;
    b.time("lm_head + loss, logits made twice", ce_shape, 4 * logit_bytes, 4 * head_gemm, [&] {
      be.linear_forward(head_x, table, logits);
      be.cross_entropy_forward(logits, targets, -100, losses, lse);
      be.linear_forward(head_x, table, logits);
      be.cross_entropy_backward(logits, lse, targets, -100, 1e-4f, logits);
      be.linear_backward(logits, head_x, table, &head_dx, false, head_dw);
    });
    b.time("lm_head + loss, fused", ce_shape, 3 * logit_bytes, 3 * head_gemm, [&] {
      be.linear_forward(head_x, table, logits);
      be.cross_entropy_forward_backward(logits, targets, -100, 1e-4f, losses, lse, logits);
      be.linear_backward(logits, head_x, table, &head_dx, false, head_dw);
    });

    // One rank's ZeRO shard of the 0.6B model's flat buffers over 8 ranks: 75M elements.
    const int64_t shard = 75'000'000;
    auto master = b.tensor(DType::F32, {shard}, 1, 32), m = b.tensor(DType::F32, {shard}, 0.01, 33),
         grad = b.tensor(bf, {shard}, 0.01, 35), weights = b.tensor(bf, {shard}, 1, 36);
    // Second moments must not be negative: start them at zero.
    auto v = b.tensor(DType::F32, {shard}, 0.0, 34);
    AdamWHyper hyper;
    hyper.lr = 1e-4;
    hyper.weight_decay = 0.1;
    b.time("adamw_update", "75M", 26.0 * shard, 0,
           [&] { be.adamw_update(master, grad, m, v, hyper); });
    b.time("sum_squares", "75M bf16", 2.0 * shard, 0, [&] { be.sum_squares(grad); });
    b.time("copy fp32→bf16", "75M", 6.0 * shard, 0, [&] { be.copy(master, weights); });
    if (!json_path.empty()) write_file_atomic(json_path, b.json(info.name));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qwen3-bench-kernels: error: %s\n", e.what());
    return 1;
  }
}
