// Finite-difference gradient checks, one per CPU op, in double precision: each op's backward must
// be the derivative of its forward. The kernels are templates; double makes central differences
// accurate to ~1e-10, so the tolerance can be tight enough to catch a wrong term.
// Forward passes are also checked against direct, loop-by-loop formulas where the op has a
// convention to pin down (RoPE's pairing, GQA's head mapping, causality, the CE shift).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "core/kernels/cpu/elementwise.h"
#include "core/kernels/cpu/add_rmsnorm.h"
#include "core/kernels/cpu/attention.h"
#include "core/kernels/cpu/cross_entropy.h"
#include "core/kernels/cpu/embedding.h"
#include "core/kernels/cpu/linear.h"
#include "core/kernels/cpu/qk_norm_rope.h"
#include "core/kernels/cpu/rmsnorm.h"
#include "core/kernels/cpu/rope.h"
#include "core/kernels/cpu/swiglu.h"
#include "core/util/rng.h"

namespace {

using Vec = std::vector<double>;
using namespace qwen3::cpu;

Vec random_vec(size_t n, uint64_t stream, double scale = 1.0) {
  std::vector<float> f(n);
  qwen3::fill_uniform(f.data(), int64_t(n), -scale, scale, 42, stream);
  return Vec(f.begin(), f.end());
}

double dot(const Vec& a, const Vec& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// Checks d/dx_i <probe, forward(x)> against analytic[i] by central differences, on up to
// `samples` evenly spread elements of x.
void expect_gradient(const char* what, Vec& x, const std::function<Vec()>& forward,
                     const Vec& probe, const Vec& analytic, size_t samples = 48) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const double h = 1e-5;
  const size_t step = std::max<size_t>(1, x.size() / samples);
  for (size_t i = 0; i < x.size(); i += step) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = dot(probe, forward());
    x[i] = saved - h;
    const double down = dot(probe, forward());
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-8 + 1e-6 * std::abs(numeric)) << what << " element " << i;
  }
}

TEST(GradCheck, Linear) {
  const int64_t rows = 5, in = 7, out = 4;
  Vec x = random_vec(rows * in, 1), w = random_vec(out * in, 2), probe = random_vec(rows * out, 3);
  auto forward = [&] {
    Vec y(rows * out);
    linear_forward(x.data(), w.data(), rows, in, out, y.data());
    return y;
  };
  Vec dx(rows * in, 0.0), dw(out * in, 0.0);
  linear_backward(probe.data(), x.data(), w.data(), rows, in, out, dx.data(), false, dw.data());
  expect_gradient("linear dx", x, forward, probe, dx);
  expect_gradient("linear dw", w, forward, probe, dw);
  // accumulate_dx adds to what is there; dw always accumulates.
  Vec dx2(rows * in, 1.0), dw2 = dw;
  linear_backward(probe.data(), x.data(), w.data(), rows, in, out, dx2.data(), true, dw2.data());
  for (size_t i = 0; i < dx.size(); ++i)
    EXPECT_NEAR(dx2[i], dx[i] + 1.0, 1e-12);
  for (size_t i = 0; i < dw.size(); ++i)
    EXPECT_NEAR(dw2[i], 2 * dw[i], 1e-12);
}

TEST(GradCheck, Embedding) {
  const int64_t vocab = 11, dim = 70, rows = 9;  // dim > 64 spans two column chunks
  const std::vector<int32_t> tokens{3, 0, 3, 10, 7, 3, 0, 1, 10};  // repeats accumulate
  Vec table = random_vec(vocab * dim, 4), probe = random_vec(rows * dim, 5);
  auto forward = [&] {
    Vec y(rows * dim);
    embedding_forward(tokens.data(), table.data(), rows, dim, y.data());
    return y;
  };
  const Vec y = forward();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < dim; ++c)
      ASSERT_EQ(y[r * dim + c], table[tokens[r] * dim + c]);
  Vec dtable(vocab * dim, 0.0);
  embedding_backward(tokens.data(), probe.data(), rows, dim, dtable.data());
  expect_gradient("embedding dtable", table, forward, probe, dtable, 400);
}

void check_rmsnorm(int64_t rows, int64_t cols) {
  Vec x = random_vec(rows * cols, 6, 2.0), w = random_vec(cols, 7),
      probe = random_vec(rows * cols, 8);
  const double eps = 1e-6;
  auto forward = [&] {
    Vec y(rows * cols), rstd(rows);
    rmsnorm_forward(x.data(), w.data(), rows, cols, eps, y.data(), rstd.data());
    return y;
  };
  // Forward against the formula y = w · x / sqrt(mean(x²) + eps).
  const Vec y = forward();
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t c = 0; c < cols; ++c)
      ms += x[r * cols + c] * x[r * cols + c] / double(cols);
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_NEAR(y[r * cols + c], w[c] * x[r * cols + c] / std::sqrt(ms + eps), 1e-12);
  }
  Vec y2(rows * cols), rstd(rows), dx(rows * cols), dw(cols, 0.0);
  rmsnorm_forward(x.data(), w.data(), rows, cols, eps, y2.data(), rstd.data());
  rmsnorm_backward(probe.data(), x.data(), w.data(), rstd.data(), rows, cols, dx.data(), false,
                   dw.data());
  expect_gradient("rmsnorm dx", x, forward, probe, dx);
  expect_gradient("rmsnorm dw", w, forward, probe, dw);
}

TEST(GradCheck, RmsNorm) {
  check_rmsnorm(6, 16);
}
// More rows than one reduction block (64), as QK-norm sees with rows = tokens x heads.
TEST(GradCheck, RmsNormManyRows) {
  check_rmsnorm(150, 8);
}

TEST(GradCheck, Rope) {
  const int64_t rows = 5, heads = 3, hd = 8;
  const std::vector<int32_t> positions{0, 1, 7, 1000, 40959};
  Vec x = random_vec(rows * heads * hd, 9), probe = random_vec(rows * heads * hd, 10);
  const double theta = 1e6;
  auto forward = [&] {
    Vec y(x.size());
    rope_forward(x.data(), positions.data(), rows, heads, hd, theta, y.data());
    return y;
  };
  Vec dx(x.size());
  rope_backward(probe.data(), positions.data(), rows, heads, hd, theta, dx.data());
  expect_gradient("rope dx", x, forward, probe, dx);
}

// The fused op against its definition, rope(rmsnorm(x) · w), and by finite differences: dx and
// dw of the composition, with positions that restart and one far out.
TEST(GradCheck, QkNormRope) {
  const int64_t rows = 5, heads = 3, hd = 8;
  const std::vector<int32_t> positions{0, 1, 7, 0, 40959};
  const double theta = 1e6, eps = 1e-6;
  Vec x = random_vec(rows * heads * hd, 30, 2.0), w = random_vec(hd, 31),
      probe = random_vec(rows * heads * hd, 32);
  auto forward = [&] {
    Vec y(x.size()), rstd(rows * heads);
    qk_norm_rope_forward(x.data(), w.data(), positions.data(), rows, heads, hd, eps, theta,
                         y.data(), rstd.data());
    return y;
  };
  Vec normed(x.size()), rstd(rows * heads), expected(x.size());
  rmsnorm_forward(x.data(), w.data(), rows * heads, hd, eps, normed.data(), rstd.data());
  rope_forward(normed.data(), positions.data(), rows, heads, hd, theta, expected.data());
  const Vec y = forward();
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], expected[i], 1e-14) << "element " << i;
  // dx overwrites, dw accumulates.
  Vec dx(x.size(), 7.0), dw(hd, 0.0);
  qk_norm_rope_backward(probe.data(), x.data(), w.data(), rstd.data(), positions.data(), rows,
                        heads, hd, theta, dx.data(), dw.data());
  expect_gradient("qk_norm_rope dx", x, forward, probe, dx);
  expect_gradient("qk_norm_rope dw", w, forward, probe, dw);
  Vec dx2(x.size()), dw2(hd, 1.0);
  qk_norm_rope_backward(probe.data(), x.data(), w.data(), rstd.data(), positions.data(), rows,
                        heads, hd, theta, dx2.data(), dw2.data());
  for (size_t i = 0; i < dw.size(); ++i)
    EXPECT_NEAR(dw2[i], dw[i] + 1.0, 1e-12);
}

// sum = a + b, then the norm of the sum; both gradients are the norm's input gradient, which the
// model obtains from rmsnorm_backward with accumulate_dx into the residual stream's gradient.
TEST(GradCheck, AddRmsNorm) {
  const int64_t rows = 4, cols = 12;
  const double eps = 1e-6;
  Vec a = random_vec(rows * cols, 33, 2.0), b = random_vec(rows * cols, 34),
      w = random_vec(cols, 35), probe = random_vec(rows * cols, 36);
  auto forward = [&] {
    Vec sum(a.size()), y(a.size()), rstd(rows);
    add_rmsnorm_forward(a.data(), b.data(), w.data(), rows, cols, eps, sum.data(), y.data(),
                        rstd.data());
    for (size_t i = 0; i < sum.size(); ++i)
      EXPECT_EQ(sum[i], a[i] + b[i]);
    return y;
  };
  Vec sum(a.size()), y(a.size()), rstd(rows);
  add_rmsnorm_forward(a.data(), b.data(), w.data(), rows, cols, eps, sum.data(), y.data(),
                      rstd.data());
  Vec d_resid(a.size(), 0.0), dw(cols, 0.0);
  rmsnorm_backward(probe.data(), sum.data(), w.data(), rstd.data(), rows, cols, d_resid.data(),
                   true, dw.data());
  expect_gradient("add_rmsnorm da", a, forward, probe, d_resid);
  expect_gradient("add_rmsnorm db", b, forward, probe, d_resid);
  expect_gradient("add_rmsnorm dw", w, forward, probe, dw);
}

TEST(Rope, PairsDimensionIWithIPlusHalfAsHfRotateHalf) {
  // head_dim 4: pairs (0, 2) at frequency 1 and (1, 3) at frequency theta^(-1/2).
  const int64_t hd = 4;
  const double theta = 10000.0;
  const std::vector<int32_t> pos{3};
  const Vec e0{1, 0, 0, 0}, e1{0, 1, 0, 0};
  Vec y(4);
  rope_forward(e0.data(), pos.data(), 1, 1, hd, theta, y.data());
  EXPECT_NEAR(y[0], std::cos(3.0), 1e-12);
  EXPECT_NEAR(y[2], std::sin(3.0), 1e-12);
  EXPECT_EQ(y[1], 0.0);
  EXPECT_EQ(y[3], 0.0);
  rope_forward(e1.data(), pos.data(), 1, 1, hd, theta, y.data());
  const double f = 3.0 / std::sqrt(theta);
  EXPECT_NEAR(y[1], std::cos(f), 1e-12);
  EXPECT_NEAR(y[3], std::sin(f), 1e-12);
  // Position 0 is the identity.
  const std::vector<int32_t> zero{0};
  const Vec x = random_vec(8, 11);
  Vec z(8);
  rope_forward(x.data(), zero.data(), 1, 2, hd, theta, z.data());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(z[i], x[i]);
}

// Attention straight from the definition, one query at a time.
Vec naive_attention(const AttentionShape& s, const Vec& q, const Vec& k, const Vec& v,
                    const std::vector<int32_t>* docs) {
  Vec out(q.size(), 0.0);
  const int64_t group = s.q_heads / s.kv_heads;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.q_heads; ++h)
      for (int64_t i = 0; i < s.seq; ++i) {
        const int64_t g = h / group;
        std::vector<double> w(s.seq, 0.0);
        double total = 0;
        for (int64_t j = 0; j <= i; ++j) {
          if (docs && (*docs)[b * s.seq + j] != (*docs)[b * s.seq + i]) continue;
          double score = 0;
          for (int64_t d = 0; d < s.head_dim; ++d)
            score += q[((b * s.seq + i) * s.q_heads + h) * s.head_dim + d] *
                     k[((b * s.seq + j) * s.kv_heads + g) * s.head_dim + d];
          w[j] = std::exp(score / std::sqrt(double(s.head_dim)));
          total += w[j];
        }
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < s.head_dim; ++d)
            out[((b * s.seq + i) * s.q_heads + h) * s.head_dim + d] +=
                w[j] / total * v[((b * s.seq + j) * s.kv_heads + g) * s.head_dim + d];
      }
  return out;
}

void check_attention(const AttentionShape& s, bool with_docs) {
  const size_t q_size = size_t(s.batch * s.seq * s.q_heads * s.head_dim);
  const size_t kv_size = size_t(s.batch * s.seq * s.kv_heads * s.head_dim);
  Vec q = random_vec(q_size, 12, 1.5), k = random_vec(kv_size, 13, 1.5),
      v = random_vec(kv_size, 14), probe = random_vec(q_size, 15);
  std::vector<int32_t> docs(size_t(s.batch * s.seq));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t t = 0; t < s.seq; ++t)
      docs[b * s.seq + t] = t < s.seq / 3 + b ? 0 : 1;
  const int32_t* doc_ptr = with_docs ? docs.data() : nullptr;
  Vec lse(size_t(s.batch * s.q_heads * s.seq));
  auto forward = [&] {
    Vec out(q_size);
    attention_forward(s, q.data(), k.data(), v.data(), doc_ptr, out.data(), lse.data());
    return out;
  };
  const Vec out = forward();
  const Vec expected = naive_attention(s, q, k, v, with_docs ? &docs : nullptr);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], expected[i], 1e-12) << i;
  Vec dq(q_size), dk(kv_size), dv(kv_size);
  attention_backward(s, probe.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), doc_ptr,
                     dq.data(), dk.data(), dv.data());
  expect_gradient("attention dq", q, forward, probe, dq);
  expect_gradient("attention dk", k, forward, probe, dk);
  expect_gradient("attention dv", v, forward, probe, dv);
}

TEST(GradCheck, AttentionGqa) {
  check_attention({2, 9, 4, 2, 4}, false);
}
TEST(GradCheck, AttentionMultiHeadPerKvGroupOf4) {
  check_attention({1, 7, 4, 1, 6}, false);
}
TEST(GradCheck, AttentionDocumentMask) {
  check_attention({2, 10, 2, 1, 4}, true);
}
// More queries than one 128-row block, so blocked scores and cross-block keys are exercised.
TEST(GradCheck, AttentionLongerThanOneBlock) {
  check_attention({1, 140, 2, 1, 2}, false);
}

// gate and up as the model holds them: side by side in rows of [gate | up] (stride 2 · cols).
TEST(GradCheck, SwiGlu) {
  const int64_t rows = 5, cols = 8, n = rows * cols;
  Vec gate_up = random_vec(2 * n, 16, 4.0), probe = random_vec(n, 18);
  auto forward = [&] {
    Vec h(n);
    swiglu_forward(gate_up.data(), gate_up.data() + cols, rows, cols, 2 * cols, h.data());
    return h;
  };
  const Vec h = forward();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double g = gate_up[size_t(r * 2 * cols + c)],
                   u = gate_up[size_t(r * 2 * cols + cols + c)];
      ASSERT_NEAR(h[size_t(r * cols + c)], g / (1 + std::exp(-g)) * u, 1e-14);
    }
  Vec d_gate_up(2 * n);
  swiglu_backward(probe.data(), gate_up.data(), gate_up.data() + cols, rows, cols, 2 * cols,
                  d_gate_up.data(), d_gate_up.data() + cols);
  expect_gradient("swiglu d_gate_up", gate_up, forward, probe, d_gate_up);
}

TEST(GradCheck, CrossEntropyWithIgnoredRows) {
  const int64_t rows = 6, vocab = 13;
  const int32_t ignore = -100;
  const std::vector<int32_t> targets{4, ignore, 0, 12, ignore, 4};
  Vec logits = random_vec(rows * vocab, 19, 3.0), probe = random_vec(rows, 20);
  Vec lse(rows);
  auto forward = [&] {
    Vec losses(rows);
    cross_entropy_forward(logits.data(), targets.data(), rows, vocab, ignore, losses.data(),
                          lse.data());
    return losses;
  };
  const Vec losses = forward();
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == ignore) {
      EXPECT_EQ(losses[r], 0.0);
      continue;
    }
    double total = 0;
    for (int64_t v = 0; v < vocab; ++v)
      total += std::exp(logits[r * vocab + v]);
    EXPECT_NEAR(losses[r], std::log(total) - logits[r * vocab + targets[r]], 1e-12);
  }
  // The backward applies one scale to every row; check each row's gradient against a probe that
  // weighs that row alone.
  for (int64_t r = 0; r < rows; ++r) {
    Vec one_hot(rows, 0.0);
    one_hot[r] = 1.0;
    std::vector<int32_t> only_r(rows, ignore);
    only_r[r] = targets[r];
    Vec dlogits(rows * vocab);
    forward();
    cross_entropy_backward(logits.data(), lse.data(), only_r.data(), rows, vocab, ignore, 1.0,
                           dlogits.data());
    expect_gradient("cross_entropy dlogits", logits, forward, one_hot, dlogits, 80);
  }
}

TEST(GradCheck, CrossEntropyScaleAndInPlace) {
  const int64_t rows = 3, vocab = 5;
  const std::vector<int32_t> targets{1, 2, 3};
  Vec logits = random_vec(rows * vocab, 21), lse(rows), losses(rows);
  cross_entropy_forward(logits.data(), targets.data(), rows, vocab, -100, losses.data(),
                        lse.data());
  Vec separate(rows * vocab);
  cross_entropy_backward(logits.data(), lse.data(), targets.data(), rows, vocab, -100, 0.25,
                         separate.data());
  cross_entropy_backward(logits.data(), lse.data(), targets.data(), rows, vocab, -100, 0.25,
                         logits.data());
  for (size_t i = 0; i < logits.size(); ++i)
    EXPECT_NEAR(logits[i], separate[i], 1e-15);
  for (int64_t r = 0; r < rows; ++r) {  // each row of softmax − onehot sums to 0
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += logits[r * vocab + v];
    EXPECT_NEAR(sum, 0.0, 1e-14);
  }
}

TEST(GradCheck, ResidualAdd) {
  const int64_t n = 10;
  Vec a = random_vec(n, 22), b = random_vec(n, 23), probe = random_vec(n, 24);
  auto forward = [&] {
    Vec out(n);
    add_forward(a.data(), b.data(), n, out.data());
    return out;
  };
  // d<probe, a + b>/da = probe, for a and for b.
  expect_gradient("add da", a, forward, probe, probe);
  expect_gradient("add db", b, forward, probe, probe);
}

}  // namespace
