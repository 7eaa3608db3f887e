#pragma once
// The residual add and the RMSNorm that reads its result, as one op: sum = a + b, then
// y = rmsnorm(sum) · w. A decoder layer ends each block this way (the residual stream gains the
// block's output and the next block normalises it). The backward needs no op of its own:
// rmsnorm_backward with accumulate_dx adds the norm's input gradient into the residual stream's.
#include <cstdint>

namespace qwen3::cpu {

// a[rows, cols], b[rows, cols], w[cols] -> sum[rows, cols] (may alias a or b), y[rows, cols],
// rstd[rows]
template <class T>
void add_rmsnorm_forward(const T* a, const T* b, const T* w, int64_t rows, int64_t cols, T eps,
                         T* sum, T* y, T* rstd);

}  // namespace qwen3::cpu
