// Every op of the Backend interface, run on a reference backend and on each backend under test with
// the same fresh random inputs, outputs compared by normalised error (‖a − b‖ / ‖a‖), in the manner
// of ggml's test-backend-ops. Outputs are poisoned with NaN before each run, so an element an op
// fails to write shows; gradients an op accumulates into start from random values instead, so a
// missing "+=" shows too.
//
// Backends under test:
//  * the CPU backend with another thread count, which must agree bit for bit (the reference's
//    reductions do not depend on the thread count);
//  * the CUDA backend, against a tolerance per output dtype, where a GPU is present (otherwise the
//    test skips and says why). Its inputs are bf16, so the reference is given the same values
//    rounded to bf16: what is measured is the op, not the rounding of its inputs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/normalised_error.h"
#include "core/ops/backend.h"
#include "core/ops/cuda_backend.h"
#include "core/tensor/bf16.h"
#include "core/util/rng.h"

namespace qwen3 {
namespace {

using qwen3::test_data::normalised_error;

// One output of an op, as host fp32, with the dtype it was stored in (the tolerance depends on it).
// `of_rounded_intermediate`: an fp32 statistic of a value the op itself stores in the storage
// dtype first (add_rmsnorm's rstd is that of the bf16 sum, the reference's that of the exact one),
// so it carries the storage dtype's rounding and is held to that tolerance.
struct Output {
  std::vector<float> values;
  DType dtype = DType::F32;
  bool of_rounded_intermediate = false;
};
// Named outputs of one op.
using Outputs = std::map<std::string, Output>;

// Owns the buffers of one op run on one backend.
class Arena {
 public:
  // `round_stored_to_bf16`: values stored in the backend's storage dtype are first rounded to
  // bf16, so that an fp32 reference sees exactly the inputs a bf16 backend sees.
  explicit Arena(Backend& backend, bool round_stored_to_bf16 = false)
      : backend_(backend), round_stored_to_bf16_(round_stored_to_bf16) {}

  // An fp32 tensor holding `values` (optimizer state, statistics): never rounded.
  TensorView floats(const Shape& shape, const std::vector<float>& values) {
    return upload_as(shape, values, DType::F32);
  }
  // In the backend's storage dtype, as weights and activations are. The reference rounds these,
  // and only these, to what a bf16 backend stores.
  TensorView stored(const Shape& shape, std::vector<float> values) {
    if (round_stored_to_bf16_)
      for (float& x : values)
        x = bf16_bits_to_float(float_to_bf16_bits(x));
    return upload_as(shape, values, storage());
  }
  // A weight gradient: fp32, or in the storage dtype (rounded as `stored` rounds).
  TensorView gradient(const Shape& shape, std::vector<float> values, bool fp32) {
    return fp32 ? floats(shape, values) : stored(shape, std::move(values));
  }
  TensorView ints(const Shape& shape, const std::vector<int32_t>& values) {
    TensorView v = allocate(shape, DType::I32);
    backend_.upload(values.data(), v);
    return v;
  }
  TensorView doubles(const Shape& shape, const std::vector<double>& values) {
    TensorView v = allocate(shape, DType::F64);
    backend_.upload(values.data(), v);
    return v;
  }
  // NaN everywhere: what the op does not write stays NaN.
  TensorView poisoned(const Shape& shape, DType dtype) {
    return upload_as(shape,
                     std::vector<float>(static_cast<size_t>(shape.numel()),
                                        std::numeric_limits<float>::quiet_NaN()),
                     dtype);
  }
  Output read(const TensorView& v) {
    Output out{std::vector<float>(static_cast<size_t>(v.numel())), v.dtype};
    if (v.dtype == DType::F64) {  // compared as fp32, which the tolerance allows for
      std::vector<double> wide(out.values.size());
      backend_.download(v, wide.data());
      std::copy(wide.begin(), wide.end(), out.values.begin());
      out.dtype = DType::F32;
      return out;
    }
    backend_.download(v, out.values.data());
    return out;
  }
  Backend& backend() { return backend_; }
  DType storage() const { return backend_.storage_dtype(); }

 private:
  TensorView upload_as(const Shape& shape, const std::vector<float>& values, DType dtype) {
    TensorView v = allocate(shape, dtype);
    backend_.upload(values.data(), v);
    return v;
  }
  TensorView allocate(const Shape& shape, DType dtype) {
    // 256-byte granularity keeps every view aligned as the backends expect.
    const size_t bytes = (static_cast<size_t>(shape.numel()) * dtype_size(dtype) + 255) / 256 * 256;
    buffers_.push_back(backend_.allocate(bytes > 0 ? bytes : 256));
    return buffers_.back()->view(dtype, shape);
  }
  Backend& backend_;
  bool round_stored_to_bf16_ = false;
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

std::vector<float> normal(int64_t n, uint64_t stream, double std = 1.0) {
  std::vector<float> v(static_cast<size_t>(n));
  fill_normal(v.data(), n, 0.0, std, /*seed=*/20261123, stream);
  return v;
}

std::vector<int32_t> ids(int64_t n, int32_t below, uint64_t stream) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] =
        static_cast<int32_t>(random_bits(20261123, stream, uint64_t(i)) % uint64_t(below));
  return v;
}

// One op, run on `arena`'s backend: uploads its inputs, runs, returns its outputs.
using OpRun = std::function<Outputs(Arena&)>;

struct OpCase {
  std::string name;
  OpRun run;
};

// ---- the cases: small shapes that still cover GQA, tied rows, ignored targets, documents ----

constexpr int64_t kN = 24, kIn = 40, kOut = 36, kVocab = 50;
constexpr int64_t kB = 2, kT = 12, kHq = 4, kHkv = 2, kHd = 16;

std::vector<OpCase> all_cases() {
  std::vector<OpCase> cases;
  cases.push_back({"embedding_forward", [](Arena& a) {
                     auto tokens = a.ints({kN}, ids(kN, kVocab, 1));
                     auto table = a.stored({kVocab, kIn}, normal(kVocab * kIn, 2));
                     auto out = a.poisoned({kN, kIn}, a.storage());
                     a.backend().embedding_forward(tokens, table, out);
                     return Outputs{{"out", a.read(out)}};
                   }});
  // The weight-gradient ops run into gradients of the storage dtype and of fp32 (grad_dtype).
  for (bool fp32 : {false, true})
    cases.push_back(
        {fp32 ? "embedding_backward_fp32_grad" : "embedding_backward", [fp32](Arena& a) {
           // Repeated ids: rows that several tokens add into.
           auto tokens = a.ints({kN}, ids(kN, 7, 3));
           auto dout = a.stored({kN, kIn}, normal(kN * kIn, 4));
           auto dtable = a.gradient({kVocab, kIn}, normal(kVocab * kIn, 5), fp32);
           a.backend().embedding_backward(tokens, dout, dtable);
           return Outputs{{"dtable", a.read(dtable)}};
         }});
  cases.push_back({"linear_forward", [](Arena& a) {
                     auto x = a.stored({kN, kIn}, normal(kN * kIn, 6));
                     auto w = a.stored({kOut, kIn}, normal(kOut * kIn, 7, 0.2));
                     auto y = a.poisoned({kN, kOut}, a.storage());
                     a.backend().linear_forward(x, w, y);
                     return Outputs{{"y", a.read(y)}};
                   }});
  for (auto [accumulate, fp32] :
       {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}})
    cases.push_back({accumulate ? "linear_backward_accumulate_dx"
                                : (fp32 ? "linear_backward_fp32_grad" : "linear_backward"),
                     [accumulate, fp32](Arena& a) {
                       auto dy = a.stored({kN, kOut}, normal(kN * kOut, 8));
                       auto x = a.stored({kN, kIn}, normal(kN * kIn, 9));
                       auto w = a.stored({kOut, kIn}, normal(kOut * kIn, 10, 0.2));
                       auto dx = accumulate ? a.stored({kN, kIn}, normal(kN * kIn, 11))
                                            : a.poisoned({kN, kIn}, a.storage());
                       auto dw = a.gradient({kOut, kIn}, normal(kOut * kIn, 12), fp32);
                       a.backend().linear_backward(dy, x, w, &dx, accumulate, dw);
                       return Outputs{{"dx", a.read(dx)}, {"dw", a.read(dw)}};
                     }});
  cases.push_back({"rmsnorm_forward", [](Arena& a) {
                     auto x = a.stored({kN, kIn}, normal(kN * kIn, 13, 3.0));
                     auto w = a.stored({kIn}, normal(kIn, 14));
                     auto y = a.poisoned({kN, kIn}, a.storage());
                     auto rstd = a.poisoned({kN}, DType::F32);
                     a.backend().rmsnorm_forward(x, w, 1e-6f, y, rstd);
                     return Outputs{{"y", a.read(y)}, {"rstd", a.read(rstd)}};
                   }});
  for (auto [accumulate, fp32] :
       {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}})
    cases.push_back({accumulate ? "rmsnorm_backward_accumulate_dx"
                                : (fp32 ? "rmsnorm_backward_fp32_grad" : "rmsnorm_backward"),
                     [accumulate, fp32](Arena& a) {
                       auto x = a.stored({kN, kIn}, normal(kN * kIn, 15, 3.0));
                       auto w = a.stored({kIn}, normal(kIn, 16));
                       auto y = a.poisoned({kN, kIn}, a.storage());
                       auto rstd = a.poisoned({kN}, DType::F32);
                       a.backend().rmsnorm_forward(x, w, 1e-6f, y, rstd);
                       auto dy = a.stored({kN, kIn}, normal(kN * kIn, 17));
                       auto dx = accumulate ? a.stored({kN, kIn}, normal(kN * kIn, 18))
                                            : a.poisoned({kN, kIn}, a.storage());
                       auto dw = a.gradient({kIn}, normal(kIn, 19), fp32);
                       a.backend().rmsnorm_backward(dy, x, w, rstd, dx, accumulate, dw);
                       return Outputs{{"dx", a.read(dx)}, {"dw", a.read(dw)}};
                     }});
  cases.push_back({"add_rmsnorm_forward", [](Arena& a) {
                     auto resid = a.stored({kN, kIn}, normal(kN * kIn, 40, 3.0));
                     auto delta = a.stored({kN, kIn}, normal(kN * kIn, 41));
                     auto w = a.stored({kIn}, normal(kIn, 42));
                     auto sum = a.poisoned({kN, kIn}, a.storage());
                     auto y = a.poisoned({kN, kIn}, a.storage());
                     auto rstd = a.poisoned({kN}, DType::F32);
                     a.backend().add_rmsnorm_forward(resid, delta, w, 1e-6f, sum, y, rstd);
                     // In place, as the model may run it: the sum over the residual itself.
                     auto y2 = a.poisoned({kN, kIn}, a.storage());
                     auto rstd2 = a.poisoned({kN}, DType::F32);
                     a.backend().add_rmsnorm_forward(resid, delta, w, 1e-6f, resid, y2, rstd2);
                     Output rstd_out = a.read(rstd);
                     rstd_out.of_rounded_intermediate = true;
                     return Outputs{{"sum", a.read(sum)},
                                    {"y", a.read(y)},
                                    {"rstd", rstd_out},
                                    {"sum_in_place", a.read(resid)},
                                    {"y_in_place", a.read(y2)}};
                   }});
  // q/k/v prepared for attention from the rows of the fused projection (GQA: kHq query heads,
  // kHkv each for k and v), and back.
  for (bool fp32 : {false, true})
    cases.push_back({fp32 ? "qkv_norm_rope_fp32_grad" : "qkv_norm_rope", [fp32](Arena& a) {
                       constexpr int64_t kHeads = kHq + 2 * kHkv;
                       std::vector<int32_t> pos(kN);
                       for (int64_t i = 0; i < kN; ++i)  // restarts, and one far position
                         pos[size_t(i)] = static_cast<int32_t>(i % 9 * 53);
                       pos[5] = 40000;
                       auto positions = a.ints({kN}, pos);
                       auto qkv = a.stored({kN, kHeads, kHd}, normal(kN * kHeads * kHd, 43, 3.0));
                       auto q_w = a.stored({kHd}, normal(kHd, 44)),
                            k_w = a.stored({kHd}, normal(kHd, 51));
                       auto q = a.poisoned({kN, kHq, kHd}, a.storage());
                       auto k = a.poisoned({kN, kHkv, kHd}, a.storage());
                       auto v = a.poisoned({kN, kHkv, kHd}, a.storage());
                       auto q_rstd = a.poisoned({kN * kHq}, DType::F32);
                       auto k_rstd = a.poisoned({kN * kHkv}, DType::F32);
                       a.backend().qkv_norm_rope_forward(qkv, q_w, k_w, positions, 1e-6f, 1e6, q, k,
                                                         v, q_rstd, k_rstd);
                       auto dq = a.stored({kN, kHq, kHd}, normal(kN * kHq * kHd, 45));
                       auto dk = a.stored({kN, kHkv, kHd}, normal(kN * kHkv * kHd, 52));
                       auto dv = a.stored({kN, kHkv, kHd}, normal(kN * kHkv * kHd, 53));
                       auto d_qkv = a.poisoned({kN, kHeads, kHd}, a.storage());
                       auto dq_w = a.gradient({kHd}, normal(kHd, 46), fp32);
                       auto dk_w = a.gradient({kHd}, normal(kHd, 54), fp32);
                       a.backend().qkv_norm_rope_backward(dq, dk, dv, qkv, q_w, k_w, q_rstd, k_rstd,
                                                          positions, 1e6, d_qkv, dq_w, dk_w);
                       return Outputs{{"q", a.read(q)},           {"k", a.read(k)},
                                      {"v", a.read(v)},           {"q_rstd", a.read(q_rstd)},
                                      {"k_rstd", a.read(k_rstd)}, {"d_qkv", a.read(d_qkv)},
                                      {"dq_w", a.read(dq_w)},     {"dk_w", a.read(dk_w)}};
                     }});
  // The batch's angles made once (set_rope_positions; on the CUDA backend a table) and read by
  // the rotations given the same positions; then new positions uploaded over the same buffer,
  // which the next rotation must read rather than the stale table.
  cases.push_back({"rope_positions_table", [](Arena& a) {
                     std::vector<int32_t> pos(kN);
                     for (int64_t i = 0; i < kN; ++i)
                       pos[size_t(i)] = static_cast<int32_t>(i % 7 * 61);
                     auto positions = a.ints({kN}, pos);
                     a.backend().set_rope_positions(positions, 1e6, kHd);
                     constexpr int64_t kHeads = kHq + 2 * kHkv;
                     auto x = a.stored({kN, kHq, kHd}, normal(kN * kHq * kHd, 47, 3.0));
                     auto qkv = a.stored({kN, kHeads, kHd}, normal(kN * kHeads * kHd, 55, 3.0));
                     auto w = a.stored({kHd}, normal(kHd, 48));
                     auto q = a.poisoned({kN, kHq, kHd}, a.storage());
                     auto k = a.poisoned({kN, kHkv, kHd}, a.storage());
                     auto v = a.poisoned({kN, kHkv, kHd}, a.storage());
                     auto q_rstd = a.poisoned({kN * kHq}, DType::F32);
                     auto k_rstd = a.poisoned({kN * kHkv}, DType::F32);
                     a.backend().qkv_norm_rope_forward(qkv, w, w, positions, 1e-6f, 1e6, q, k, v,
                                                       q_rstd, k_rstd);
                     auto dq = a.stored({kN, kHq, kHd}, normal(kN * kHq * kHd, 49));
                     auto dk = a.stored({kN, kHkv, kHd}, normal(kN * kHkv * kHd, 56));
                     auto d_qkv = a.poisoned({kN, kHeads, kHd}, a.storage());
                     auto dw = a.stored({kHd}, normal(kHd, 50));
                     a.backend().qkv_norm_rope_backward(dq, dk, dk, qkv, w, w, q_rstd, k_rstd,
                                                        positions, 1e6, d_qkv, dw, dw);
                     auto rotated = a.poisoned({kN, kHq, kHd}, a.storage());
                     a.backend().rope_backward(x, positions, 1e6, rotated);
                     for (int32_t& p : pos)
                       p = p * 3 + 1;
                     a.backend().upload(pos.data(), positions);
                     auto rotated_again = a.poisoned({kN, kHq, kHd}, a.storage());
                     a.backend().rope_forward(x, positions, 1e6, rotated_again);
                     return Outputs{{"q", a.read(q)},
                                    {"k", a.read(k)},
                                    {"d_qkv", a.read(d_qkv)},
                                    {"dw", a.read(dw)},
                                    {"rope_backward", a.read(rotated)},
                                    {"after_new_positions", a.read(rotated_again)}};
                   }});
  for (bool backward : {false, true})
    cases.push_back({backward ? "rope_backward" : "rope_forward", [backward](Arena& a) {
                       std::vector<int32_t> pos(kN);
                       for (int64_t i = 0; i < kN; ++i)  // restarts, as at document starts
                         pos[size_t(i)] = static_cast<int32_t>(i % 10 * 37);
                       auto positions = a.ints({kN}, pos);
                       auto x = a.stored({kN, kHq, kHd}, normal(kN * kHq * kHd, 20));
                       auto y = a.poisoned({kN, kHq, kHd}, a.storage());
                       if (backward)
                         a.backend().rope_backward(x, positions, 1e6, y);
                       else
                         a.backend().rope_forward(x, positions, 1e4, y);
                       return Outputs{{"y", a.read(y)}};
                     }});
  for (bool documents : {false, true})
    cases.push_back({documents ? "attention_documents" : "attention", [documents](Arena& a) {
                       const int64_t nq = kB * kT * kHq * kHd, nkv = kB * kT * kHkv * kHd;
                       auto q = a.stored({kB, kT, kHq, kHd}, normal(nq, 21));
                       auto k = a.stored({kB, kT, kHkv, kHd}, normal(nkv, 22));
                       auto v = a.stored({kB, kT, kHkv, kHd}, normal(nkv, 23));
                       std::vector<int32_t> doc(kB * kT);
                       for (int64_t i = 0; i < kB * kT;
                            ++i)  // documents of 5 tokens, and a last short one
                         doc[size_t(i)] = static_cast<int32_t>(i % kT / 5);
                       auto doc_ids = a.ints({kB, kT}, doc);
                       const TensorView* mask = documents ? &doc_ids : nullptr;
                       auto out = a.poisoned({kB, kT, kHq, kHd}, a.storage());
                       auto lse = a.poisoned({kB, kHq, kT}, DType::F32);
                       a.backend().attention_forward(q, k, v, mask, out, lse);
                       auto dout = a.stored({kB, kT, kHq, kHd}, normal(nq, 24));
                       auto dq = a.poisoned({kB, kT, kHq, kHd}, a.storage());
                       auto dk = a.poisoned({kB, kT, kHkv, kHd}, a.storage());
                       auto dv = a.poisoned({kB, kT, kHkv, kHd}, a.storage());
                       a.backend().attention_backward(dout, q, k, v, out, lse, mask, dq, dk, dv);
                       return Outputs{{"out", a.read(out)},
                                      {"lse", a.read(lse)},
                                      {"dq", a.read(dq)},
                                      {"dk", a.read(dk)},
                                      {"dv", a.read(dv)}};
                     }});
  // gate and up side by side in each row, as one GEMM over the adjacent weights gives them; the
  // backward out of place, then in place over its input as the model runs it.
  cases.push_back({"swiglu", [](Arena& a) {
                     std::vector<float> packed = normal(kN * 2 * kIn, 25, 2.0);
                     auto gate_up = a.stored({kN, 2 * kIn}, packed);
                     auto h = a.poisoned({kN, kIn}, a.storage());
                     a.backend().swiglu_forward(gate_up, h);
                     auto dh = a.stored({kN, kIn}, normal(kN * kIn, 27));
                     auto d_gate_up = a.poisoned({kN, 2 * kIn}, a.storage());
                     a.backend().swiglu_backward(dh, gate_up, d_gate_up);
                     a.backend().swiglu_backward(dh, gate_up, gate_up);
                     return Outputs{{"h", a.read(h)},
                                    {"d_gate_up", a.read(d_gate_up)},
                                    {"d_gate_up_in_place", a.read(gate_up)}};
                   }});
  cases.push_back({"add", [](Arena& a) {
                     auto x = a.stored({kN, kIn}, normal(kN * kIn, 28));
                     auto y = a.stored({kN, kIn}, normal(kN * kIn, 29));
                     auto out = a.poisoned({kN, kIn}, a.storage());
                     a.backend().add(x, y, out);
                     return Outputs{{"out", a.read(out)}};
                   }});
  cases.push_back(
      {"cross_entropy", [](Arena& a) {
         auto logits = a.stored({kN, kVocab}, normal(kN * kVocab, 30, 3.0));
         std::vector<int32_t> t = ids(kN, kVocab, 31);
         t[3] = t[17] = -100;  // ignored positions
         auto targets = a.ints({kN}, t);
         auto losses = a.poisoned({kN}, DType::F32);
         auto lse = a.poisoned({kN}, DType::F32);
         a.backend().cross_entropy_forward(logits, targets, -100, losses, lse);
         auto dlogits = a.poisoned({kN, kVocab}, a.storage());
         a.backend().cross_entropy_backward(logits, lse, targets, -100, 0.125f, dlogits);
         return Outputs{
             {"losses", a.read(losses)}, {"lse", a.read(lse)}, {"dlogits", a.read(dlogits)}};
       }});
  // Fused (CUDA: one kernel) against the reference's two ops in sequence: a vocabulary that is not
  // a multiple of 8 and one that is (the CUDA kernel's scalar and 16-byte loads), ignored targets,
  // −∞ logits, out of place and in place over the logits.
  for (int64_t vocab : {kVocab, int64_t{56}})
    cases.push_back(
        {"cross_entropy_forward_backward_vocab" + std::to_string(vocab), [vocab](Arena& a) {
           std::vector<float> raw = normal(kN * vocab, 51, 3.0);
           for (size_t c : {size_t(0), size_t(1), size_t(9), size_t(2 * vocab + 3)})
             raw[c] = -std::numeric_limits<float>::infinity();
           auto logits = a.stored({kN, vocab}, raw);
           std::vector<int32_t> t = ids(kN, int32_t(vocab), 52);
           t[0] = 4;
           t[5] = t[11] = -100;
           auto targets = a.ints({kN}, t);
           auto losses = a.poisoned({kN}, DType::F32), lse = a.poisoned({kN}, DType::F32);
           auto dlogits = a.poisoned({kN, vocab}, a.storage());
           a.backend().cross_entropy_forward_backward(logits, targets, -100, 0.125f, losses, lse,
                                                      dlogits);
           auto in_place_losses = a.poisoned({kN}, DType::F32);
           auto in_place_lse = a.poisoned({kN}, DType::F32);
           a.backend().cross_entropy_forward_backward(logits, targets, -100, 0.125f,
                                                      in_place_losses, in_place_lse, logits);
           return Outputs{{"losses", a.read(losses)},
                          {"lse", a.read(lse)},
                          {"dlogits", a.read(dlogits)},
                          {"losses_in_place", a.read(in_place_losses)},
                          {"dlogits_in_place", a.read(logits)}};
         }});
  cases.push_back({"optimizer_ops", [](Arena& a) {
                     const int64_t n = 1000;
                     auto master = a.floats({n}, normal(n, 32));
                     auto grad = a.stored({n}, normal(n, 33, 0.1));
                     auto m = a.floats({n}, normal(n, 34, 0.01));
                     std::vector<float> v_init = normal(n, 35, 0.001);
                     for (float& x : v_init)
                       x = x * x;  // second moments are not negative
                     auto v = a.floats({n}, v_init);
                     AdamWHyper hyper;
                     hyper.lr = 1e-3;
                     hyper.weight_decay = 0.1;
                     hyper.grad_scale = 0.5;
                     hyper.step = 7;
                     a.backend().adamw_update(master, grad, m, v, hyper);
                     auto weights = a.poisoned({n}, a.storage());
                     a.backend().copy(master, weights);
                     auto sum = a.floats({n}, normal(n, 36));
                     a.backend().accumulate(grad, sum);
                     const double squares = a.backend().sum_squares(grad);
                     return Outputs{{"master", a.read(master)},
                                    {"m", a.read(m)},
                                    {"v", a.read(v)},
                                    {"weights", a.read(weights)},
                                    {"accumulated", a.read(sum)},
                                    {"sum_squares", {{static_cast<float>(squares)}}}};
                   }});
  cases.push_back({"accumulate_sum", [](Arena& a) {
                     // Two micro-batches' losses onto a running total; 10,000 elements span
                     // several blocks of every backend's fixed reduction grid.
                     const int64_t n = 10000;
                     auto first = a.floats({n}, normal(n, 37, 3.0));
                     auto second = a.floats({n}, normal(n, 38, 3.0));
                     auto total = a.doubles({1}, {0.5});
                     a.backend().accumulate_sum(first, total);
                     a.backend().accumulate_sum(second, total);
                     return Outputs{{"total", a.read(total)}};
                   }});
  return cases;
}

// Normalised error allowed per output dtype; 0 means bit-identical.
struct Tolerance {
  double bf16 = 0.0, f32 = 0.0;
  double for_dtype(DType dtype) const { return dtype == DType::BF16 ? bf16 : f32; }
};

const OpCase& find_case(const std::vector<OpCase>& cases, const std::string& name) {
  for (const OpCase& c : cases)
    if (c.name == name) return c;
  throw std::runtime_error("no op case named " + name);
}

// Runs `op` on a one-thread CPU reference and on `tested`, and compares every output.
void expect_agreement(const OpCase& op, const std::string& tested_name,
                      const std::function<std::unique_ptr<Backend>()>& make_tested,
                      const Tolerance& tolerance) {
  // The CPU backend sets OpenMP's thread count when it is made, for the whole process: each
  // backend is made just before it runs, and the count is put back afterwards.
  const int threads_before = omp_get_max_threads();
  auto tested = make_tested();
  const bool bf16_inputs = tested->storage_dtype() == DType::BF16;
  auto reference = make_cpu_backend(1);
  Arena reference_arena(*reference, bf16_inputs);
  const Outputs expected = op.run(reference_arena);
  for (const auto& [name, output] : expected)
    for (size_t i = 0; i < output.values.size(); ++i)
      ASSERT_TRUE(std::isfinite(output.values[i]))
          << "reference " << name << "[" << i << "] unwritten";

  Arena arena(*tested);
  const Outputs got = op.run(arena);
  for (const auto& [name, output] : expected) {
    const Output& other = got.at(name);
    ASSERT_EQ(other.values.size(), output.values.size());
    for (size_t i = 0; i < other.values.size(); ++i)
      ASSERT_TRUE(std::isfinite(other.values[i]))
          << tested_name << ": " << op.name << " left " << name << "[" << i << "] unwritten";
    const double error = normalised_error(output.values, other.values);
    const double allowed =
        tolerance.for_dtype(output.of_rounded_intermediate ? tested->storage_dtype() : other.dtype);
    if (allowed == 0)
      EXPECT_EQ(other.values, output.values)
          << tested_name << ": " << op.name << " output " << name
          << " differs from the reference (normalised error " << error << ")";
    else
      EXPECT_LE(error, allowed) << tested_name << ": " << op.name << " output " << name << " ("
                                << dtype_name(other.dtype) << ")";
  }
  omp_set_num_threads(threads_before);
}

class BackendOps : public testing::TestWithParam<std::string> {};

// The reference runs on one thread; the same code on two must give the same bits.
TEST_P(BackendOps, CpuOnTwoThreadsIsBitIdentical) {
  const std::vector<OpCase> cases = all_cases();
  expect_agreement(
      find_case(cases, GetParam()), "cpu (2 threads)", [] { return make_cpu_backend(2); },
      Tolerance{});
}

// bf16 outputs carry bf16's 8-bit mantissa (relative rounding 2⁻⁹, about 2e-3 in norm) once or
// twice over; fp32 outputs (statistics, optimizer state) are computed in fp32 from identical
// inputs and differ only by summation order.
TEST_P(BackendOps, CudaAgreesWithinTolerance) {
  std::string reason;
  if (!cuda_backend_available(&reason))
    GTEST_SKIP() << "the CUDA backend is not tested here: " << reason;
  const std::vector<OpCase> cases = all_cases();
  expect_agreement(
      find_case(cases, GetParam()), "cuda", [] { return make_cuda_backend(0); },
      Tolerance{1e-2, 1e-4});
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const OpCase& c : all_cases())
    names.push_back(c.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(EveryOp, BackendOps, testing::ValuesIn(case_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The harness itself must catch what it is for: an op that leaves an element unwritten reads back
// as NaN, and a changed value gives a non-zero error.
TEST(BackendOpsHarness, PoisonShowsAndErrorsAreMeasured) {
  auto backend = make_cpu_backend(1);
  Arena arena(*backend);
  auto untouched = arena.poisoned({5}, DType::F32);
  for (float x : arena.read(untouched).values)
    EXPECT_TRUE(std::isnan(x));
  EXPECT_EQ(normalised_error({3, 4}, {3, 4}), 0.0);
  EXPECT_NEAR(normalised_error({3, 4}, {3, 5}), 0.2, 1e-12);
}

}  // namespace
}  // namespace qwen3
