#include "core/kernels/cpu/gemm.h"

#include <cblas.h>

#include <climits>

#include "core/util/error.h"

namespace qwen3::cpu {

namespace {

// CBLAS takes 32-bit sizes (Debian's OpenBLAS is not the ILP64 build).
void check_blas_sizes(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  for (int64_t v : {m, n, k, lda, ldb, ldc})
    QWEN3_CHECK(v >= 0 && v <= INT_MAX, "GEMM dimension {} does not fit BLAS's 32-bit int", v);
}

}  // namespace

template <>
void gemm<float>(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  check_blas_sizes(m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), alpha, a, int(lda),
              b, int(ldb), beta, c, int(ldc));
}

template <>
void gemm<double>(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                  double* c, int64_t ldc) {
  check_blas_sizes(m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), alpha, a, int(lda),
              b, int(ldb), beta, c, int(ldc));
}

}  // namespace qwen3::cpu
