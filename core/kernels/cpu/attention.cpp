#include "core/kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/kernels/cpu/gemm.h"

namespace qwen3::cpu {

namespace {

// 128 query rows per block: the score block (128 × seq) stays in L2 for seq up to a few thousand.
constexpr int64_t kQueryBlock = 128;

bool visible(const int32_t* docs, int64_t query, int64_t key) {
  return key <= query && (docs == nullptr || docs[key] == docs[query]);
}

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v,
                       const int32_t* doc_ids, T* out, T* lse) {
  const int64_t group = s.q_heads / s.kv_heads;
  const int64_t q_stride = s.q_heads * s.head_dim, kv_stride = s.kv_heads * s.head_dim;
  const T scale = T(1) / std::sqrt(T(s.head_dim));
#pragma omp parallel
  {
    std::vector<T> scores(static_cast<size_t>(kQueryBlock * s.seq));
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < s.batch * s.q_heads; ++bh) {
      const int64_t b = bh / s.q_heads, h = bh % s.q_heads, g = h / group;
      const T* qb = q + b * s.seq * q_stride + h * s.head_dim;
      const T* kb = k + b * s.seq * kv_stride + g * s.head_dim;
      const T* vb = v + b * s.seq * kv_stride + g * s.head_dim;
      T* ob = out + b * s.seq * q_stride + h * s.head_dim;
      T* lse_bh = lse + (b * s.q_heads + h) * s.seq;
      const int32_t* docs = doc_ids ? doc_ids + b * s.seq : nullptr;
      for (int64_t i0 = 0; i0 < s.seq; i0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, s.seq - i0), keys = i0 + rows;
        // scores[rows, keys] = scale · q[i0:i0+rows] · k[0:keys]ᵀ
        gemm<T>(false, true, rows, keys, s.head_dim, scale, qb + i0 * q_stride, q_stride, kb,
                kv_stride, T(0), scores.data(), keys);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          T* row = scores.data() + r * keys;
          T max_score = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j < keys; ++j)
            if (visible(docs, i, j)) max_score = std::max(max_score, row[j]);
          double sum = 0.0;
          for (int64_t j = 0; j < keys; ++j) {
            row[j] = visible(docs, i, j) ? std::exp(row[j] - max_score) : T(0);
            sum += row[j];
          }
          const T inv_sum = T(1.0 / sum);
          for (int64_t j = 0; j < keys; ++j)
            row[j] *= inv_sum;
          lse_bh[i] = max_score + T(std::log(sum));
        }
        gemm<T>(false, false, rows, s.head_dim, keys, T(1), scores.data(), keys, vb, kv_stride,
                T(0), ob + i0 * q_stride, q_stride);
      }
    }
  }
}

template <class T>
void attention_backward(const AttentionShape& s, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const int32_t* doc_ids, T* dq, T* dk, T* dv) {
  // With P the probabilities and D_i = Σ_d dout_i,d · out_i,d:
  //   dv = Pᵀ·dout,  dP = dout·vᵀ,  dS = P ⊙ (dP − D),  dq = scale·dS·k,  dk = scale·dSᵀ·q.
  // One task per (batch, KV head) owns that head's dk and dv rows, so the group's query heads
  // accumulate into them in a fixed order without races.
  const int64_t group = s.q_heads / s.kv_heads;
  const int64_t q_stride = s.q_heads * s.head_dim, kv_stride = s.kv_heads * s.head_dim;
  const T scale = T(1) / std::sqrt(T(s.head_dim));
#pragma omp parallel
  {
    std::vector<T> probs(static_cast<size_t>(kQueryBlock * s.seq));
    std::vector<T> dprobs(static_cast<size_t>(kQueryBlock * s.seq));
    std::vector<T> row_dot(static_cast<size_t>(kQueryBlock));
#pragma omp for schedule(dynamic, 1)
    for (int64_t bg = 0; bg < s.batch * s.kv_heads; ++bg) {
      const int64_t b = bg / s.kv_heads, g = bg % s.kv_heads;
      const T* kb = k + b * s.seq * kv_stride + g * s.head_dim;
      const T* vb = v + b * s.seq * kv_stride + g * s.head_dim;
      T* dkb = dk + b * s.seq * kv_stride + g * s.head_dim;
      T* dvb = dv + b * s.seq * kv_stride + g * s.head_dim;
      const int32_t* docs = doc_ids ? doc_ids + b * s.seq : nullptr;
      for (int64_t t = 0; t < s.seq; ++t)
        for (int64_t d = 0; d < s.head_dim; ++d)
          dkb[t * kv_stride + d] = dvb[t * kv_stride + d] = T(0);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const int64_t head_offset = b * s.seq * q_stride + h * s.head_dim;
        const T* qb = q + head_offset;
        const T* ob = out + head_offset;
        const T* dob = dout + head_offset;
        T* dqb = dq + head_offset;
        const T* lse_bh = lse + (b * s.q_heads + h) * s.seq;
        for (int64_t i0 = 0; i0 < s.seq; i0 += kQueryBlock) {
          const int64_t rows = std::min(kQueryBlock, s.seq - i0), keys = i0 + rows;
          gemm<T>(false, true, rows, keys, s.head_dim, scale, qb + i0 * q_stride, q_stride, kb,
                  kv_stride, T(0), probs.data(), keys);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r;
            T* row = probs.data() + r * keys;
            for (int64_t j = 0; j < keys; ++j)
              row[j] = visible(docs, i, j) ? std::exp(row[j] - lse_bh[i]) : T(0);
            double dot = 0.0;
            for (int64_t d = 0; d < s.head_dim; ++d)
              dot += double(dob[i * q_stride + d]) * double(ob[i * q_stride + d]);
            row_dot[r] = T(dot);
          }
          // dv[0:keys] += Pᵀ · dout[i0:i0+rows]
          gemm<T>(true, false, keys, s.head_dim, rows, T(1), probs.data(), keys,
                  dob + i0 * q_stride, q_stride, T(1), dvb, kv_stride);
          // dP = dout · vᵀ, then dS = P ⊙ (dP − D), stored in dprobs
          gemm<T>(false, true, rows, keys, s.head_dim, T(1), dob + i0 * q_stride, q_stride, vb,
                  kv_stride, T(0), dprobs.data(), keys);
          for (int64_t r = 0; r < rows; ++r) {
            T* drow = dprobs.data() + r * keys;
            const T* prow = probs.data() + r * keys;
            for (int64_t j = 0; j < keys; ++j)
              drow[j] = prow[j] * (drow[j] - row_dot[r]);
          }
          gemm<T>(false, false, rows, s.head_dim, keys, scale, dprobs.data(), keys, kb, kv_stride,
                  T(0), dqb + i0 * q_stride, q_stride);
          gemm<T>(true, false, keys, s.head_dim, rows, scale, dprobs.data(), keys,
                  qb + i0 * q_stride, q_stride, T(1), dkb, kv_stride);
        }
      }
    }
  }
}

template void attention_forward<float>(const AttentionShape&, const float*, const float*,
                                       const float*, const int32_t*, float*, float*);
template void attention_forward<double>(const AttentionShape&, const double*, const double*,
                                        const double*, const int32_t*, double*, double*);
template void attention_backward<float>(const AttentionShape&, const float*, const float*,
                                        const float*, const float*, const float*, const float*,
                                        const int32_t*, float*, float*, float*);
template void attention_backward<double>(const AttentionShape&, const double*, const double*,
                                         const double*, const double*, const double*, const double*,
                                         const int32_t*, double*, double*, double*);

}  // namespace qwen3::cpu
