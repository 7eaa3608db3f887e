#include "core/kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

namespace qwen3::cpu {

template <class T>
void embedding_forward(const int32_t* tokens, const T* table, int64_t rows, int64_t dim, T* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out + r * dim, table + int64_t(tokens[r]) * dim, sizeof(T) * dim);
}

template <class T>
void embedding_backward(const int32_t* tokens, const T* dout, int64_t rows, int64_t dim,
                        T* dtable) {
  // 64 columns = one or more cache lines per row touched, and enough chunks to feed the cores.
  constexpr int64_t kColumnChunk = 64;
  const int64_t chunks = (dim + kColumnChunk - 1) / kColumnChunk;
#pragma omp parallel for schedule(static)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t c0 = chunk * kColumnChunk, c1 = std::min(dim, c0 + kColumnChunk);
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = dtable + int64_t(tokens[r]) * dim;
      const T* src = dout + r * dim;
      for (int64_t c = c0; c < c1; ++c)
        dst[c] += src[c];
    }
  }
}

template void embedding_forward<float>(const int32_t*, const float*, int64_t, int64_t, float*);
template void embedding_forward<double>(const int32_t*, const double*, int64_t, int64_t, double*);
template void embedding_backward<float>(const int32_t*, const float*, int64_t, int64_t, float*);
template void embedding_backward<double>(const int32_t*, const double*, int64_t, int64_t, double*);

}  // namespace qwen3::cpu
