#pragma once
#include <cstdint>

namespace qwen3::cpu {

// tokens[rows] (already range-checked), table[vocab, dim] -> out[rows, dim]
template <class T>
void embedding_forward(const int32_t* tokens, const T* table, int64_t rows, int64_t dim, T* out);

// dtable[tokens[r], :] += dout[r, :]. Threads split the columns, and each walks the rows in order,
// so repeated tokens accumulate in the same order every run: deterministic for any thread count.
template <class T>
void embedding_backward(const int32_t* tokens, const T* dout, int64_t rows, int64_t dim, T* dtable);

}  // namespace qwen3::cpu
