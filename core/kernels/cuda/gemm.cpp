#include "core/kernels/cuda/gemm.h"

#include <cuda_runtime.h>

#include "core/cuda/check.h"
#include "core/util/error.h"

namespace qwen3::cuda {

struct LtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    // Destroy calls only fail on a null descriptor, which these guards exclude.
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {

// The largest power of two (up to 256, cuBLASLt's default requirement) dividing the address.
int alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int alignment = 256;
  while (alignment > 1 && address % alignment != 0)
    alignment /= 2;
  return alignment;
}

}  // namespace

LtGemm::LtGemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  QWEN3_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) QWEN3_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

LtGemm::~LtGemm() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

const LtGemm::Plan& LtGemm::plan_for(const GemmProblem& p, const Key& key) {
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;

  auto plan = std::make_unique<Plan>();
  // fp32 accumulation and fp32 alpha/beta over bf16 matrices.
  QWEN3_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  QWEN3_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  QWEN3_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  // Stored shapes, before the op: A is m×k (k×m transposed), B is k×n (n×k transposed).
  const uint64_t a_rows = p.transpose_a ? p.k : p.m, a_cols = p.transpose_a ? p.m : p.k;
  const uint64_t b_rows = p.transpose_b ? p.n : p.k, b_cols = p.transpose_b ? p.k : p.n;
  QWEN3_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, a_rows, a_cols, p.lda));
  QWEN3_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, b_rows, b_cols, p.ldb));
  const bool c_is_fp32 = std::get<12>(key);
  QWEN3_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&plan->c, c_is_fp32 ? CUDA_R_32F : CUDA_R_16BF, p.m, p.n, p.ldc));

  cublasLtMatmulPreference_t preference = nullptr;
  QWEN3_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const uint64_t workspace = workspace_bytes_;
  const uint32_t align_a = uint32_t(std::get<9>(key)), align_b = uint32_t(std::get<10>(key)),
                 align_c = uint32_t(std::get<11>(key));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace));
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a));
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b));
  for (auto attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    if (status == CUBLAS_STATUS_SUCCESS)
      status =
          cublasLtMatmulPreferenceSetAttribute(preference, attribute, &align_c, sizeof(align_c));
  if (status == CUBLAS_STATUS_SUCCESS)
    status = cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b, plan->c, plan->c,
                                            preference, 1, &result, &returned);
  cublasLtMatmulPreferenceDestroy(preference);
  QWEN3_CUBLAS_CHECK(status);
  QWEN3_CHECK(returned > 0,
              "cuBLASLt has no bf16 algorithm for {} C[{}, {}] = op(A)·op(B) with k = {} "
              "(transposes {}/{}, leading dimensions {}/{}/{}, alignments {}/{}/{} bytes)",
              c_is_fp32 ? "fp32" : "bf16", p.m, p.n, p.k, p.transpose_a, p.transpose_b, p.lda,
              p.ldb, p.ldc, align_a, align_b, align_c);
  plan->algo = result.algo;
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void LtGemm::run(const GemmProblem& p, const __nv_bfloat16* a, const __nv_bfloat16* b,
                 __nv_bfloat16* c, cudaStream_t stream) {
  run_into(p, a, b, c, /*c_is_fp32=*/false, stream);
}

void LtGemm::run(const GemmProblem& p, const __nv_bfloat16* a, const __nv_bfloat16* b, float* c,
                 cudaStream_t stream) {
  run_into(p, a, b, c, /*c_is_fp32=*/true, stream);
}

void LtGemm::run_into(const GemmProblem& p, const void* a, const void* b, void* c, bool c_is_fp32,
                      cudaStream_t stream) {
  QWEN3_CHECK(p.m > 0 && p.n > 0 && p.k > 0, "GEMM with an empty dimension: m {}, n {}, k {}", p.m,
              p.n, p.k);
  const Key key{p.transpose_a,
                p.transpose_b,
                p.m,
                p.n,
                p.k,
                p.lda,
                p.ldb,
                p.ldc,
                p.beta == 0.0f,
                alignment_of(a),
                alignment_of(b),
                alignment_of(c),
                c_is_fp32};
  const Plan& plan = plan_for(p, key);
  // C is both the addend and the output (in place, which cuBLASLt allows with equal layouts).
  QWEN3_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.desc, &p.alpha, a, plan.a, b, plan.b, &p.beta, c,
                                    plan.c, c, plan.c, &plan.algo, workspace_, workspace_bytes_,
                                    stream));
}

}  // namespace qwen3::cuda
