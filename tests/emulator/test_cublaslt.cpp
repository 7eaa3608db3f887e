// The cuBLASLt stand-in (cuda_include/cublasLt.h, cublaslt.cpp): a known answer worked by hand from
// cuBLASLt's documented column-major semantics, then every transpose pair, β = 0 over NaN, β ≠ 0,
// padded leading dimensions and C == D in place on odd shapes against OpenBLAS's sgemm on the same
// bf16-rounded values; the refusals a GPU would fail on; and core/kernels/cuda/gemm.cpp's LtGemm,
// the project's only caller, run through the stand-in.
#include <cblas.h>
#include <cublasLt.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/kernels/cuda/gemm.h"
#include "core/util/error.h"
#include "tests/emulator/kernel_test_support.h"

namespace qwen3::emulator_test {
namespace {

namespace cublaslt = emulator::cublaslt;

uint16_t bits_of(float value) {
  return float_to_bf16_bits(value);
}
float value_of(uint16_t bits) {
  return bf16_bits_to_float(bits);
}

// One matmul through the stand-in with the calls gemm.cpp makes; returns the first failing status.
struct Matmul {
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  uint64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  uint32_t alignment = 256;
  size_t workspace_limit = 1 << 20, workspace_given = 1 << 20;
  cudaDataType_t c_type = CUDA_R_16BF, d_type = CUDA_R_16BF, a_type = CUDA_R_16BF;
};

cublasStatus_t run_matmul(const Matmul& p, const void* a, const void* b, void* c) {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  emulator::DeviceBuffer workspace(p.workspace_given > 0 ? p.workspace_given : 1);
  cublasStatus_t s = cublasLtCreate(&handle);
  auto step = [&](cublasStatus_t next) {
    if (s == CUBLAS_STATUS_SUCCESS) s = next;
  };
  step(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  if (s == CUBLAS_STATUS_SUCCESS) {
    step(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &p.transa,
                                        sizeof(p.transa)));
    step(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &p.transb,
                                        sizeof(p.transb)));
  }
  const bool ta = p.transa == CUBLAS_OP_T, tb = p.transb == CUBLAS_OP_T;
  step(cublasLtMatrixLayoutCreate(&la, p.a_type, ta ? p.k : p.m, ta ? p.m : p.k, p.lda));
  step(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, tb ? p.n : p.k, tb ? p.k : p.n, p.ldb));
  step(cublasLtMatrixLayoutCreate(&lc, p.c_type, p.m, p.n, p.ldc));
  step(cublasLtMatrixLayoutCreate(&ld, p.d_type, p.m, p.n, p.ldc));
  step(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t limit = p.workspace_limit;
  step(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit,
                                            sizeof(limit)));
  for (auto attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    step(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &p.alignment, sizeof(p.alignment)));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  step(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, ld, pref, 1, &result, &returned));
  if (s == CUBLAS_STATUS_SUCCESS)
    s = cublasLtMatmul(handle, desc, &p.alpha, a, la, b, lb, &p.beta, c, lc, c, ld, &result.algo,
                       workspace.data(), p.workspace_given, nullptr);
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  for (auto layout : {la, lb, lc, ld})
    if (layout) cublasLtMatrixLayoutDestroy(layout);
  if (desc) cublasLtMatmulDescDestroy(desc);
  if (handle) cublasLtDestroy(handle);
  return s;
}

TEST(EmulatedCublasLt, KnownAnswerColumnMajor) {
  // A is 2x3 column-major: columns (1,2), (3,4), (5,6), i.e. rows [1 3 5] and [2 4 6].
  // B is 3x2: columns (1,0,2) and (0,1,1). A·B = [[1+10, 3+5], [2+12, 4+6]] = [[11, 8], [14, 10]],
  // stored by columns as 11, 14, 8, 10. With α = 2, β = 1 over C = 1, 2, 3, 4: 23, 30, 19, 24.
  DeviceArray<uint16_t> a({bits_of(1), bits_of(2), bits_of(3), bits_of(4), bits_of(5), bits_of(6)});
  DeviceArray<uint16_t> b({bits_of(1), bits_of(0), bits_of(2), bits_of(0), bits_of(1), bits_of(1)});
  DeviceArray<uint16_t> c({bits_of(1), bits_of(2), bits_of(3), bits_of(4)});
  Matmul p{.m = 2, .n = 2, .k = 3, .lda = 2, .ldb = 3, .ldc = 2, .alpha = 2.0f, .beta = 1.0f};
  ASSERT_EQ(run_matmul(p, a.data(), b.data(), c.data()), CUBLAS_STATUS_SUCCESS)
      << cublaslt::last_refusal();
  const std::vector<float> want = {23, 30, 19, 24};
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(value_of(c.download()[i]), want[i]) << "element " << i;

  // The same product as Aᵀ stored 3x2 (rows of A as columns) with TRANSA, β = 0: 11, 14, 8, 10.
  DeviceArray<uint16_t> at(
      {bits_of(1), bits_of(3), bits_of(5), bits_of(2), bits_of(4), bits_of(6)});
  DeviceArray<uint16_t> d = DeviceArray<uint16_t>::poisoned(4);
  Matmul q{.transa = CUBLAS_OP_T, .m = 2, .n = 2, .k = 3, .lda = 3, .ldb = 3, .ldc = 2};
  ASSERT_EQ(run_matmul(q, at.data(), b.data(), d.data()), CUBLAS_STATUS_SUCCESS)
      << cublaslt::last_refusal();
  const std::vector<float> product = {11, 14, 8, 10};
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(value_of(d.download()[i]), product[i]) << "element " << i;
}

// cuBLASLt's type table lists fp32 C and D over bf16 A and B for CUBLAS_COMPUTE_32F: the result
// is stored unrounded. Worked by hand: A = (1, 1)ᵀ, B = (2⁻¹⁰), C = (1, 300), β = 1. In fp32
// D = (1 + 2⁻¹⁰, 300 + 2⁻¹⁰), both exact (24-bit mantissa); bf16's 8 bits keep neither sum, whose
// additions are below half its spacing at 1 (2⁻⁷) and at 300 (2): D rounds back to C.
TEST(EmulatedCublasLt, KnownAnswerFp32OutputKeepsWhatBf16Rounds) {
  DeviceArray<uint16_t> a({bits_of(1), bits_of(1)});
  DeviceArray<uint16_t> b(std::vector<uint16_t>{bits_of(0x1p-10f)});  // not the size constructor
  DeviceArray<float> c32({1.0f, 300.0f});
  Matmul p{.m = 2, .n = 1, .k = 1, .lda = 2, .ldb = 1, .ldc = 2, .beta = 1.0f};
  p.c_type = p.d_type = CUDA_R_32F;
  ASSERT_EQ(run_matmul(p, a.data(), b.data(), c32.data()), CUBLAS_STATUS_SUCCESS)
      << cublaslt::last_refusal();
  EXPECT_EQ(c32.download(), (std::vector<float>{1.0f + 0x1p-10f, 300.0f + 0x1p-10f}));

  DeviceArray<uint16_t> c16({bits_of(1), bits_of(300)});
  Matmul q = p;
  q.c_type = q.d_type = CUDA_R_16BF;
  ASSERT_EQ(run_matmul(q, a.data(), b.data(), c16.data()), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(value_of(c16.download()[0]), 1.0f);
  EXPECT_EQ(value_of(c16.download()[1]), 300.0f);

  // β = 0 over NaN with an fp32 D: C is not read, D = A·B exactly.
  DeviceArray<float> fresh = DeviceArray<float>::poisoned(2);
  Matmul r = p;
  r.beta = 0.0f;
  ASSERT_EQ(run_matmul(r, a.data(), b.data(), fresh.data()), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(fresh.download(), (std::vector<float>{0x1p-10f, 0x1p-10f}));
}

// The type rows the stand-in does not emulate or cuBLASLt does not have, and an fp32 D sized as if
// it were bf16 (half the bytes its layout spans).
TEST(EmulatedCublasLt, Fp32OutputIsCheckedByItsOwnSize) {
  DeviceArray<uint16_t> a = DeviceArray<uint16_t>::poisoned(16 * 8);
  DeviceArray<uint16_t> b = DeviceArray<uint16_t>::poisoned(8 * 4);
  DeviceArray<float> c = DeviceArray<float>::poisoned(16 * 4);
  Matmul ok{.m = 16, .n = 4, .k = 8, .lda = 16, .ldb = 8, .ldc = 16};
  ok.c_type = ok.d_type = CUDA_R_32F;
  ASSERT_EQ(run_matmul(ok, a.data(), b.data(), c.data()), CUBLAS_STATUS_SUCCESS)
      << cublaslt::last_refusal();

  Matmul mixed = ok;  // C fp32, D bf16: not a row of cuBLASLt's table
  mixed.d_type = CUDA_R_16BF;
  EXPECT_EQ(run_matmul(mixed, a.data(), b.data(), c.data()), CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("wants them the same"), std::string::npos)
      << cublaslt::last_refusal();

  Matmul fp32_a = ok;  // fp32 inputs: cuBLASLt has them, the project does not use them
  fp32_a.a_type = CUDA_R_32F;
  EXPECT_EQ(run_matmul(fp32_a, c.data(), b.data(), c.data()), CUBLAS_STATUS_NOT_SUPPORTED);

  DeviceArray<uint16_t> half_size = DeviceArray<uint16_t>::poisoned(16 * 4);
  EXPECT_EQ(run_matmul(ok, a.data(), b.data(), half_size.data()), CUBLAS_STATUS_EXECUTION_FAILED);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("spans 256 bytes"), std::string::npos)
      << cublaslt::last_refusal();
}

struct Case {
  bool ta, tb;
  float beta;
  int64_t pad;  // added to every leading dimension
};

class EmulatedCublasLtCases : public ::testing::TestWithParam<Case> {};

TEST_P(EmulatedCublasLtCases, MatchesOpenBlasSgemm) {
  const Case c = GetParam();
  const int64_t m = 37, n = 29, k = 53;  // odd, none a multiple of another
  const int64_t a_rows = c.ta ? k : m, a_cols = c.ta ? m : k;
  const int64_t b_rows = c.tb ? n : k, b_cols = c.tb ? k : n;
  const int64_t lda = a_rows + c.pad, ldb = b_rows + c.pad, ldc = m + c.pad;
  const Bf16Values a = random_bf16(lda * a_cols, 11), b = random_bf16(ldb * b_cols, 12);
  Bf16Values c0 = random_bf16(ldc * n, 13);
  DeviceArray<uint16_t> a_dev(a.bits), b_dev(b.bits);
  DeviceArray<uint16_t> c_dev =
      c.beta == 0.0f ? DeviceArray<uint16_t>::poisoned(ldc * n) : DeviceArray<uint16_t>(c0.bits);
  const float alpha = 0.75f;
  Matmul p{.transa = c.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
           .transb = c.tb ? CUBLAS_OP_T : CUBLAS_OP_N,
           .m = uint64_t(m),
           .n = uint64_t(n),
           .k = uint64_t(k),
           .lda = lda,
           .ldb = ldb,
           .ldc = ldc,
           .alpha = alpha,
           .beta = c.beta};
  ASSERT_EQ(run_matmul(p, a_dev.data(), b_dev.data(), c_dev.data()), CUBLAS_STATUS_SUCCESS)
      << cublaslt::last_refusal();

  std::vector<float> ref = c.beta == 0.0f ? std::vector<float>(ldc * n, 0.0f) : c0.values;
  cblas_sgemm(CblasColMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a.values.data(), lda, b.values.data(), ldb, c.beta, ref.data(), ldc);
  const std::vector<uint16_t> got = c_dev.download();
  for (int64_t col = 0; col < n; ++col) {
    for (int64_t row = 0; row < ldc; ++row) {
      const int64_t i = col * ldc + row;
      if (row >= m) {
        // The padding between columns is not part of D: left as it was.
        EXPECT_EQ(got[i], c.beta == 0.0f ? uint16_t(0xFFFF) : c0.bits[i]) << "padding " << i;
        continue;
      }
      // Both accumulate in fp32 (in different orders); D is then rounded to bf16 (2^-8 relative).
      const float want = ref[i], have = value_of(got[i]);
      ASSERT_TRUE(std::isfinite(have)) << "D[" << row << ", " << col << "] not written";
      EXPECT_NEAR(have, want, std::abs(want) * 0x1p-8f + 1e-4f)
          << "D[" << row << ", " << col << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TransposesBetaPadding, EmulatedCublasLtCases,
                         ::testing::Values(Case{false, false, 0.0f, 0}, Case{true, false, 0.0f, 3},
                                           Case{false, true, 0.5f, 0}, Case{true, true, 0.5f, 5},
                                           Case{true, false, 1.0f, 0}, Case{false, true, 0.0f, 1}));

TEST(EmulatedCublasLt, RefusesWhatTheProjectDoesNotUse) {
  cublasLtMatmulDesc_t desc = nullptr;
  EXPECT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_16F, CUDA_R_16F),
            CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("compute type 64"), std::string::npos)
      << cublaslt::last_refusal();
  ASSERT_EQ(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  const int32_t epilogue = 2;
  EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                           sizeof(epilogue)),
            CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("attribute 7"), std::string::npos);
  const int32_t conjugate = CUBLAS_OP_C;
  EXPECT_EQ(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &conjugate,
                                           sizeof(conjugate)),
            CUBLAS_STATUS_NOT_SUPPORTED);
  cublasLtMatmulDescDestroy(desc);
  cublasLtMatrixLayout_t layout = nullptr;
  EXPECT_EQ(cublasLtMatrixLayoutCreate(&layout, CUDA_R_16F, 4, 4, 4), CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, 8, 4, 7), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("leading dimension 7"), std::string::npos);
}

TEST(EmulatedCublasLt, FailsWhereAGpuWould) {
  DeviceArray<uint16_t> a = DeviceArray<uint16_t>::poisoned(16 * 8);
  DeviceArray<uint16_t> b = DeviceArray<uint16_t>::poisoned(8 * 4);
  DeviceArray<uint16_t> c = DeviceArray<uint16_t>::poisoned(16 * 4);
  const Matmul ok{.m = 16, .n = 4, .k = 8, .lda = 16, .ldb = 8, .ldc = 16};
  ASSERT_EQ(run_matmul(ok, a.data(), b.data(), c.data()), CUBLAS_STATUS_SUCCESS);

  Matmul wrong_ld = ok;  // a leading dimension past the buffer: the GPU reads out of bounds
  wrong_ld.lda = 17;
  EXPECT_EQ(run_matmul(wrong_ld, a.data(), b.data(), c.data()), CUBLAS_STATUS_EXECUTION_FAILED);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("A (16x8, ld 17)"), std::string::npos)
      << cublaslt::last_refusal();

  Matmul wrong_k = ok;  // k = 9: layouts A 16x9 and B 9x4, past both buffers
  wrong_k.k = 9;
  wrong_k.ldb = 9;
  EXPECT_EQ(run_matmul(wrong_k, a.data(), b.data(), c.data()), CUBLAS_STATUS_EXECUTION_FAILED);

  std::vector<uint16_t> host(16 * 8);  // host memory where device memory is expected
  EXPECT_EQ(run_matmul(ok, host.data(), b.data(), c.data()), CUBLAS_STATUS_EXECUTION_FAILED);

  // Chosen for 256-byte alignment, run on a pointer 2 bytes off.
  DeviceArray<uint16_t> wide = DeviceArray<uint16_t>::poisoned(16 * 8 + 1);
  EXPECT_EQ(run_matmul(ok, wide.data() + 1, b.data(), c.data()), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("2-byte aligned"), std::string::npos)
      << cublaslt::last_refusal();
  Matmul told = ok;  // told the heuristic: fine
  told.alignment = 2;
  EXPECT_EQ(run_matmul(told, wide.data() + 1, b.data(), c.data()), CUBLAS_STATUS_SUCCESS);

  Matmul small_workspace = ok;  // the heuristic was allowed 1 MiB, the matmul given 1 KiB
  small_workspace.workspace_given = 1024;
  EXPECT_EQ(run_matmul(small_workspace, a.data(), b.data(), c.data()), CUBLAS_STATUS_INVALID_VALUE);

  // The output overlapping an input: D is the first 16x4 of A's buffer.
  EXPECT_EQ(run_matmul(ok, a.data(), b.data(), a.data()), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_NE(std::string(cublaslt::last_refusal()).find("A overlaps the output D"),
            std::string::npos)
      << cublaslt::last_refusal();
}

// gemm.cpp's LtGemm through the stand-in: the shapes of Qwen3's linear layers in miniature, with
// the transposes the backend's forward, input-gradient and weight-gradient calls use.
TEST(EmulatedCublasLt, LtGemmComputesWhatOpenBlasDoes) {
  cuda::LtGemm gemm(size_t(8) << 20);
  const int64_t tokens = 24, in = 40, out = 56;
  for (const auto& [ta, tb, beta] : {std::tuple{true, false, 0.0f}, std::tuple{false, false, 0.0f},
                                     std::tuple{false, true, 1.0f}}) {
    // Row-major Y[tokens, out] = X[tokens, in] · W[out, in]ᵀ is column-major Yᵀ = W · Xᵀ: m = out,
    // n = tokens, k = in; the other two calls are its gradients, in the same column-major terms.
    cuda::GemmProblem p;
    p.transpose_a = ta;
    p.transpose_b = tb;
    p.m = out;
    p.n = tokens;
    p.k = in;
    p.lda = ta ? in : out;
    p.ldb = tb ? tokens : in;
    p.ldc = out;
    p.beta = beta;
    const Bf16Values a = random_bf16(p.m * p.k, 21), b = random_bf16(p.k * p.n, 22);
    const Bf16Values c0 = random_bf16(p.m * p.n, 23);
    DeviceArray<uint16_t> a_dev(a.bits), b_dev(b.bits), c_dev(c0.bits);
    gemm.run(p, bf16s(a_dev), bf16s(b_dev), bf16s(c_dev), nullptr);
    std::vector<float> ref = c0.values;
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, p.m,
                p.n, p.k, 1.0f, a.values.data(), p.lda, b.values.data(), p.ldb, beta, ref.data(),
                p.ldc);
    expect_close("LtGemm", ref, bf16_to_floats(c_dev.download()), kBf16Tolerance);
  }
  EXPECT_EQ(gemm.cached_plans(), 3u);
}

// The weight-gradient GEMM into an fp32 gradient (dwᵀ[in, out] += xᵀ · dy, β = 1) over many
// micro-batches: against the same products summed by OpenBLAS in fp32, to fp32's accuracy, where
// a bf16 gradient would carry a 2⁻⁹ rounding per micro-batch.
TEST(EmulatedCublasLt, LtGemmAccumulatesIntoAnFp32Gradient) {
  cuda::LtGemm gemm(size_t(8) << 20);
  const int64_t tokens = 16, in = 24, out = 20, micro_batches = 12;
  cuda::GemmProblem p;
  p.transpose_b = true;
  p.m = in, p.n = out, p.k = tokens;
  p.lda = in, p.ldb = out, p.ldc = in;
  p.beta = 1.0f;
  const Bf16Values start = random_bf16(in * out, 30);
  DeviceArray<float> dw(start.values);
  std::vector<float> ref = start.values;
  for (int64_t step = 0; step < micro_batches; ++step) {
    const Bf16Values x = random_bf16(tokens * in, 31 + 2 * step);
    const Bf16Values dy = random_bf16(tokens * out, 32 + 2 * step);
    DeviceArray<uint16_t> x_dev(x.bits), dy_dev(dy.bits);
    gemm.run(p, bf16s(x_dev), bf16s(dy_dev), dw.data(), nullptr);
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, p.m, p.n, p.k, 1.0f, x.values.data(),
                p.lda, dy.values.data(), p.ldb, 1.0f, ref.data(), p.ldc);
  }
  const std::vector<float> got = dw.download();
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], ref[i], 1e-5f * (1.0f + std::abs(ref[i]))) << "dw element " << i;
  EXPECT_EQ(gemm.cached_plans(), 1u);
}

TEST(EmulatedCublasLt, LtGemmReportsTheFailingCall) {
  cuda::LtGemm gemm(size_t(1) << 20);
  cuda::GemmProblem p;
  p.m = 8;
  p.n = 8;
  p.k = 8;
  p.lda = p.ldb = p.ldc = 8;
  DeviceArray<uint16_t> a(8 * 8), b(8 * 4), c(8 * 8);  // B holds half of its 8x8
  try {
    gemm.run(p, bf16s(a), bf16s(b), bf16s(c), nullptr);
    FAIL() << "a B too small for its layout was not reported";
  } catch (const qwen3::Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("cublasLtMatmul"), std::string::npos) << what;
    EXPECT_NE(what.find("CUBLAS_STATUS_EXECUTION_FAILED"), std::string::npos) << what;
    EXPECT_NE(what.find("gemm.cpp"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace qwen3::emulator_test
