#pragma once
// Ids read on the device (token ids, targets) are checked where they are read, without a host
// synchronisation: one bad id is recorded here (the first to arrive, which depends on scheduling
// when there are several), the kernel leaves that row alone (never reads or writes outside a
// table), and the backend reports the record at its next synchronisation, naming the op, the id,
// its index and the valid range.
#include <cstdint>

namespace qwen3::cuda {

// Which op found the id.
enum IdCheckSite : int32_t {
  kIdSiteNone = 0,
  kIdSiteEmbeddingForward = 1,
  kIdSiteEmbeddingBackward = 2,
  kIdSiteCrossEntropyForward = 3,
  kIdSiteCrossEntropyBackward = 4,
};

struct IdCheckRecord {
  int32_t found = 0;  // 0 until the first bad id
  int32_t site = kIdSiteNone;
  int32_t value = 0;
  int32_t padding = 0;
  int64_t index = 0;
  int64_t limit = 0;  // valid ids are [0, limit)
};

#ifdef __CUDACC__
__device__ inline void report_bad_id(IdCheckRecord* record, int32_t site, int64_t index,
                                     int32_t value, int64_t limit) {
  // First writer wins; later bad ids are not recorded (the first is enough to act on).
  if (atomicCAS(&record->found, 0, 1) == 0) {
    record->site = site;
    record->value = value;
    record->index = index;
    record->limit = limit;
  }
}
#endif

}  // namespace qwen3::cuda
