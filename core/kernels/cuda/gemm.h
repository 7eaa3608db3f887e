#pragma once
// bf16 GEMMs through cuBLASLt: fp32 accumulation and scaling, one algorithm chosen by cuBLASLt's
// heuristic per distinct problem and cached, so a training step pays for the search only on its
// first pass.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace qwen3::cuda {

// Column-major, as BLAS: C[m, n] = alpha · op(A) · op(B) + beta · C, op(A) m×k, op(B) k×n; A and
// B bf16, C bf16 or fp32 (fp32 for gradients accumulated over micro-batches, so that a small
// contribution is not rounded away by bf16's 8-bit mantissa). Row-major callers pass their
// matrices transposed (see cuda_backend.cpp's linear ops).
struct GemmProblem {
  bool transpose_a = false, transpose_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
};

class LtGemm {
 public:
  // `workspace_bytes` of device scratch is allocated once; cuBLASLt's faster Hopper kernels want
  // tens of MiB.
  explicit LtGemm(size_t workspace_bytes = size_t(32) << 20);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  void run(const GemmProblem& p, const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* c,
           cudaStream_t stream);
  void run(const GemmProblem& p, const __nv_bfloat16* a, const __nv_bfloat16* b, float* c,
           cudaStream_t stream);
  // Distinct problems seen so far (each searched once).
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan;
  // transposes, m, n, k, leading dimensions, whether beta is zero, the pointers' alignment
  // (which limits the kernels cuBLASLt may pick), and whether C is fp32.
  using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool,
                         int, int, int, bool>;
  const Plan& plan_for(const GemmProblem& p, const Key& key);
  void run_into(const GemmProblem& p, const void* a, const void* b, void* c, bool c_is_fp32,
                cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace qwen3::cuda
