#pragma once
// Row-major GEMM through CBLAS: C[m, n] = alpha * op(A)[m, k] · op(B)[k, n] + beta * C.
// Instantiated for float (the CPU backend) and double (finite-difference tests).
#include <cstdint>

namespace qwen3::cpu {

template <class T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace qwen3::cpu
