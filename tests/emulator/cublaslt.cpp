// cuBLASLt's matmul for the emulator (cuda_include/cublasLt.h): the column-major semantics of
// cuBLASLt's documentation, for bf16 A, B and C = D of bf16 or fp32 (two of the type combinations
// its table lists for CUBLAS_COMPUTE_32F) with fp32 α, β, checked the
// way a GPU would fail: every element read or written must lie in a live device allocation, the
// layouts must match op(A)·op(B)'s shapes, C == D only with equal layouts, the pointers as aligned
// and the workspace as large as the heuristic was told.
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "tests/emulator/device_memory.h"

namespace qwen3::emulator::cublaslt {

struct Context {
  int64_t matmuls = 0;
};
struct MatmulDesc {
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
};
struct MatrixLayout {
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  cudaDataType_t type = CUDA_R_16BF;
  size_t element_bytes() const {
    return type == CUDA_R_32F ? sizeof(float) : sizeof(__nv_bfloat16);
  }
};
struct Preference {
  uint64_t max_workspace = 0;
  uint32_t alignment[4] = {256, 256, 256, 256};  // A, B, C, D: cuBLASLt's default is 256 bytes
};

namespace {

int64_t matmuls_total = 0;
std::string refusal;

cublasStatus_t refuse(cublasStatus_t status, const std::string& what) {
  refusal = fmt::format("cuBLASLt stand-in: {}", what);
  std::fprintf(stderr, "%s\n", refusal.c_str());
  return status;
}

// Slots of cublasLtMatmulAlgo_t::data: what the heuristic promised.
enum AlgoSlot { kMagic, kAlignA, kAlignB, kAlignC, kAlignD, kWorkspace };
constexpr uint64_t kAlgoMagic = 0x71776e336c74ull;  // "qwn3lt": an algo this stand-in filled in

// The heuristic's workspace: what a Hopper kernel of cuBLASLt would ask for, within the limit.
constexpr uint64_t kWantedWorkspace = uint64_t(4) << 20;

template <class T>
cublasStatus_t read_value(const void* value, size_t bytes, T* out, const char* attribute) {
  if (value == nullptr || bytes != sizeof(T))
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  fmt::format("{} wants {} bytes, got {}", attribute, sizeof(T), bytes));
  std::memcpy(out, value, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

// Written again rather than shared with gemm.cpp: the stand-in checks that code, so it must not
// inherit its mistakes.
int alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int alignment = 256;
  while (alignment > 1 && address % alignment != 0)
    alignment /= 2;
  return alignment;
}

// Rows and columns of op(X) for a stored layout.
void op_shape(const MatrixLayout& x, cublasOperation_t op, uint64_t* rows, uint64_t* cols) {
  *rows = op == CUBLAS_OP_N ? x.rows : x.cols;
  *cols = op == CUBLAS_OP_N ? x.cols : x.rows;
}

// cuBLASLt's type table for CUBLAS_COMPUTE_32F with CUDA_R_32F scaling, the rows emulated: A and
// B CUDA_R_16BF, C and D both CUDA_R_16BF or both CUDA_R_32F.
cublasStatus_t check_types(const MatrixLayout& a, const MatrixLayout& b, const MatrixLayout& c,
                           const MatrixLayout& d) {
  if (a.type != CUDA_R_16BF || b.type != CUDA_R_16BF)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  fmt::format("A of type {} and B of type {}: only CUDA_R_16BF inputs are emulated",
                              int(a.type), int(b.type)));
  if (c.type != d.type)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  fmt::format("C of type {} and D of type {}: cuBLASLt wants them the same",
                              int(c.type), int(d.type)));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t check_shapes(const MatmulDesc& desc, const MatrixLayout& a, const MatrixLayout& b,
                            const MatrixLayout& c, const MatrixLayout& d) {
  if (cublasStatus_t s = check_types(a, b, c, d); s != CUBLAS_STATUS_SUCCESS) return s;
  uint64_t m, ka, kb, n;
  op_shape(a, desc.transa, &m, &ka);
  op_shape(b, desc.transb, &kb, &n);
  if (ka != kb || c.rows != m || c.cols != n || d.rows != m || d.cols != n)
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  fmt::format("op(A) is {}x{}, op(B) {}x{}, C {}x{}, D {}x{}: shapes do not match",
                              m, ka, kb, n, c.rows, c.cols, d.rows, d.cols));
  return CUBLAS_STATUS_SUCCESS;
}

// The bytes a column-major layout spans from its first element: (cols - 1)·ld + rows elements.
uint64_t span_bytes(const MatrixLayout& x) {
  return ((x.cols - 1) * uint64_t(x.ld) + x.rows) * x.element_bytes();
}

cublasStatus_t check_operand(const char* name, const void* p, const MatrixLayout& x,
                             uint64_t promised_alignment) {
  if (p == nullptr) return refuse(CUBLAS_STATUS_INVALID_VALUE, fmt::format("{} is null", name));
  const size_t available = device_bytes_from(p);
  if (available < span_bytes(x))
    return refuse(CUBLAS_STATUS_EXECUTION_FAILED,
                  fmt::format("{} ({}x{}, ld {}) spans {} bytes from {}, but {} of device memory "
                              "lie there: the GPU would read or write out of bounds",
                              name, x.rows, x.cols, x.ld, span_bytes(x), p, available));
  if (uint64_t(alignment_of(p)) < promised_alignment)
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  fmt::format("{} at {} is {}-byte aligned, but the algorithm was chosen for {}: "
                              "ask the heuristic again for this alignment",
                              name, p, alignment_of(p), promised_alignment));
  return CUBLAS_STATUS_SUCCESS;
}

bool overlaps(const void* p, uint64_t p_bytes, const void* q, uint64_t q_bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(q);
  return a < b + q_bytes && b < a + p_bytes;
}

__nv_bfloat16 element(const __nv_bfloat16* x, const MatrixLayout& layout, cublasOperation_t op,
                      uint64_t row, uint64_t col) {
  // op(X)[row, col] is X[row, col] or X[col, row], column-major with leading dimension ld.
  return op == CUBLAS_OP_N ? x[col * layout.ld + row] : x[row * layout.ld + col];
}

}  // namespace

int64_t matmuls_run() {
  return matmuls_total;
}
const char* last_refusal() {
  return refusal.c_str();
}

}  // namespace qwen3::emulator::cublaslt

using namespace qwen3::emulator::cublaslt;
using qwen3::emulator::device_bytes_from;

const char* cublasLtGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasLtGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
  }
  return "unknown status";
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  if (handle == nullptr) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate: null handle");
  *handle = new Context;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
  if (desc == nullptr) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescCreate: null");
  if (compute != CUBLAS_COMPUTE_32F || scale != CUDA_R_32F)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  fmt::format("compute type {} with scale type {}: only CUBLAS_COMPUTE_32F with "
                              "CUDA_R_32F is emulated",
                              int(compute), int(scale)));
  *desc = new MatmulDesc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  if (desc == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attribute,
                                              const void* value, size_t bytes) {
  if (desc == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (attribute != CUBLASLT_MATMUL_DESC_TRANSA && attribute != CUBLASLT_MATMUL_DESC_TRANSB)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  fmt::format("matmul descriptor attribute {} is not emulated (only TRANSA, "
                              "TRANSB)",
                              int(attribute)));
  int32_t op = 0;  // cublasOperation_t is an int32 in cuBLASLt's attribute table
  if (cublasStatus_t s = read_value(value, bytes, &op, "TRANSA/TRANSB"); s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (op != CUBLAS_OP_N && op != CUBLAS_OP_T)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  fmt::format("operation {} is not emulated (real matrices: N or T)", op));
  (attribute == CUBLASLT_MATMUL_DESC_TRANSA ? desc->transa : desc->transb) = cublasOperation_t(op);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (layout == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (type != CUDA_R_16BF && type != CUDA_R_32F)
    return refuse(
        CUBLAS_STATUS_NOT_SUPPORTED,
        fmt::format("matrix type {} is not emulated (only CUDA_R_16BF and CUDA_R_32F)", int(type)));
  if (rows == 0 || cols == 0 || ld < int64_t(rows))
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  fmt::format("a {}x{} column-major layout with leading dimension {}: it must be "
                              "at least the row count",
                              rows, cols, ld));
  *layout = new MatrixLayout{rows, cols, ld, type};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  if (layout == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
  if (preference == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *preference = new Preference;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  if (preference == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  delete preference;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute,
                                                    const void* value, size_t bytes) {
  if (preference == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attribute) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      return read_value(value, bytes, &preference->max_workspace, "MAX_WORKSPACE_BYTES");
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
      uint32_t alignment = 0;
      if (cublasStatus_t s = read_value(value, bytes, &alignment, "MIN_ALIGNMENT_*_BYTES");
          s != CUBLAS_STATUS_SUCCESS)
        return s;
      if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 256)
        return refuse(CUBLAS_STATUS_INVALID_VALUE,
                      fmt::format("alignment {} bytes: a power of two up to 256", alignment));
      preference->alignment[attribute - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = alignment;
      return CUBLAS_STATUS_SUCCESS;
    }
    default:
      return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                    fmt::format("preference attribute {} is not emulated", int(attribute)));
  }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t preference, int requested,
                                              cublasLtMatmulHeuristicResult_t* results,
                                              int* returned) {
  if (!handle || !desc || !a || !b || !c || !d || !preference || !results || !returned ||
      requested < 1)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulAlgoGetHeuristic: a null argument");
  *returned = 0;
  if (cublasStatus_t s = check_shapes(*desc, *a, *b, *c, *d); s != CUBLAS_STATUS_SUCCESS) return s;
  cublasLtMatmulHeuristicResult_t& r = results[0];
  std::memset(&r, 0, sizeof(r));
  r.algo.data[kMagic] = kAlgoMagic;
  for (int i = 0; i < 4; ++i)
    r.algo.data[kAlignA + i] = preference->alignment[i];
  r.workspaceSize = std::min(preference->max_workspace, kWantedWorkspace);
  r.algo.data[kWorkspace] = r.workspaceSize;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* a, cublasLtMatrixLayout_t a_layout, const void* b,
                              cublasLtMatrixLayout_t b_layout, const void* beta, const void* c,
                              cublasLtMatrixLayout_t c_layout, void* d,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t* algo,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (!handle || !desc || !alpha || !beta || !a_layout || !b_layout || !c_layout || !d_layout)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul: a null argument");
  if (algo == nullptr || algo->data[kMagic] != kAlgoMagic)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  "cublasLtMatmul without an algorithm from cublasLtMatmulAlgoGetHeuristic is not "
                  "emulated");
  const MatrixLayout &la = *a_layout, &lb = *b_layout, &lc = *c_layout, &ld = *d_layout;
  if (cublasStatus_t s = check_shapes(*desc, la, lb, lc, ld); s != CUBLAS_STATUS_SUCCESS) return s;
  const float alpha_value = *static_cast<const float*>(alpha);
  const float beta_value = *static_cast<const float*>(beta);
  const cublasStatus_t checks[] = {
      check_operand("A", a, la, algo->data[kAlignA]),
      check_operand("B", b, lb, algo->data[kAlignB]),
      beta_value != 0.0f ? check_operand("C", c, lc, algo->data[kAlignC]) : CUBLAS_STATUS_SUCCESS,
      check_operand("D", d, ld, algo->data[kAlignD])};
  for (cublasStatus_t s : checks)
    if (s != CUBLAS_STATUS_SUCCESS) return s;
  if (c == d && (lc.rows != ld.rows || lc.cols != ld.cols || lc.ld != ld.ld))
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  "C and D are the same memory but their layouts differ (in place needs equal "
                  "layouts)");
  if (c != d && beta_value != 0.0f && overlaps(c, span_bytes(lc), d, span_bytes(ld)))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "C and D overlap without being the same matrix");
  for (const auto& [name, p, layout] : {std::tuple{"A", a, &la}, std::tuple{"B", b, &lb}})
    if (overlaps(p, span_bytes(*layout), d, span_bytes(ld)))
      return refuse(CUBLAS_STATUS_INVALID_VALUE, fmt::format("{} overlaps the output D", name));
  if (workspace_bytes < algo->data[kWorkspace])
    return refuse(CUBLAS_STATUS_INVALID_VALUE,
                  fmt::format("a workspace of {} bytes, but the algorithm needs {}",
                              workspace_bytes, algo->data[kWorkspace]));
  if (workspace_bytes > 0 && device_bytes_from(workspace) < workspace_bytes)
    return refuse(CUBLAS_STATUS_EXECUTION_FAILED,
                  fmt::format("the {}-byte workspace at {} is not that much device memory",
                              workspace_bytes, workspace));

  if (!qwen3::emulator::is_live_stream(stream))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmul on a stream that is not live");

  // Queued on the stream with everything it reads captured now, as the library captures its
  // arguments at the call; the operands' contents are read when the stream runs it.
  qwen3::emulator::enqueue(stream, [la, lb, lc, ld, transa = desc->transa, transb = desc->transb,
                                    alpha_value, beta_value, a, b, c, d] {
    uint64_t m, k, n, unused;
    op_shape(la, transa, &m, &k);
    op_shape(lb, transb, &unused, &n);
    const auto* A = static_cast<const __nv_bfloat16*>(a);
    const auto* B = static_cast<const __nv_bfloat16*>(b);
    // C and D have one type (check_types): bf16 rounds the result once, fp32 keeps it.
    const bool fp32_output = lc.type == CUDA_R_32F;
    auto c_at = [&](uint64_t i) {
      return fp32_output ? static_cast<const float*>(c)[i]
                         : __bfloat162float(static_cast<const __nv_bfloat16*>(c)[i]);
    };
    auto store_d = [&](uint64_t i, float value) {
      if (fp32_output)
        static_cast<float*>(d)[i] = value;
      else
        static_cast<__nv_bfloat16*>(d)[i] = __float2bfloat16(value);
    };
    // All of D is computed before any of it is stored: D may be C.
    std::vector<float> result(m * n);
    for (uint64_t col = 0; col < n; ++col)
      for (uint64_t row = 0; row < m; ++row) {
        float sum = 0.0f;  // fp32 accumulation of bf16 products, as CUBLAS_COMPUTE_32F
        for (uint64_t i = 0; i < k; ++i)
          sum += __bfloat162float(element(A, la, transa, row, i)) *
                 __bfloat162float(element(B, lb, transb, i, col));
        float value = alpha_value * sum;
        // β = 0: C is not read, as BLAS specifies (it may hold NaN, as fresh memory does here).
        if (beta_value != 0.0f) value += beta_value * c_at(col * lc.ld + row);
        result[col * m + row] = value;
      }
    for (uint64_t col = 0; col < n; ++col)
      for (uint64_t row = 0; row < m; ++row)
        store_d(col * ld.ld + row, result[col * m + row]);
  });
  ++handle->matmuls;
  ++matmuls_total;
  return CUBLAS_STATUS_SUCCESS;
}
