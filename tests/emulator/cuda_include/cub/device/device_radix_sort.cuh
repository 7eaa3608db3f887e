#pragma once
// Stand-in for CUB's device radix sort under the emulator: the same call, queued on the stream and
// done on the host with a stable sort. Keys are ordered as CUB orders them (signed integers
// numerically, by the bits [begin_bit, end_bit) of the key with its sign bit flipped).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "tests/emulator/runtime.h"

namespace cub {

struct DeviceRadixSort {
  template <class Key, class Value, class NumItems>
  static cudaError_t SortPairs(void* temp_storage, size_t& temp_storage_bytes, const Key* keys_in,
                               Key* keys_out, const Value* values_in, Value* values_out,
                               NumItems num_items, int begin_bit = 0, int end_bit = sizeof(Key) * 8,
                               cudaStream_t stream = nullptr) {
    static_assert(std::is_integral_v<Key>, "the emulator sorts integer keys only");
    const size_t n = static_cast<size_t>(num_items);
    // CUB needs a second copy of keys and values, and some room for its histograms.
    const size_t needed = 2 * n * (sizeof(Key) + sizeof(Value)) + 4096;
    if (temp_storage == nullptr) {
      temp_storage_bytes = needed;
      return cudaSuccess;
    }
    if (temp_storage_bytes < needed || begin_bit < 0 || end_bit > int(sizeof(Key) * 8) ||
        begin_bit >= end_bit)
      return cudaErrorInvalidValue;
    // Queued on the stream, as CUB's kernels are: the keys are read when the stream runs it.
    const bool queued = qwen3::emulator::enqueue(stream, [=] {
      // Writing all of the scratch makes a workspace too small for it fault or show.
      std::memset(temp_storage, 0xFF, needed);
      using Bits = std::make_unsigned_t<Key>;
      const Bits sign_flip = std::is_signed_v<Key> ? Bits(Bits(1) << (sizeof(Key) * 8 - 1)) : 0;
      const Bits width_mask = end_bit - begin_bit == int(sizeof(Key) * 8)
                                  ? Bits(~Bits(0))
                                  : Bits((Bits(1) << (end_bit - begin_bit)) - 1);
      auto sort_bits = [&](Key key) {
        return Bits((Bits(key) ^ sign_flip) >> begin_bit) & width_mask;
      };
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), size_t(0));
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return sort_bits(keys_in[a]) < sort_bits(keys_in[b]);
      });
      for (size_t i = 0; i < n; ++i) {
        keys_out[i] = keys_in[order[i]];
        values_out[i] = values_in[order[i]];
      }
    });
    if (!queued) return cudaErrorInvalidResourceHandle;
    return cudaSuccess;
  }
};

}  // namespace cub
