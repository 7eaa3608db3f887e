#pragma once
// The optimizer's sharded state on disk: one HDF5 file per rank that holds a range of the flat
// buffer, `optimizer/shard-RRRRR-of-NNNNN.h5`, with one dataset per tensor of the update rule's
// state, by its name (AdamW: master, exp_avg and exp_avg_sq; fp32, one value per element of the
// range) and attributes giving the range, the layout it belongs to
// and the step count. Ranges are in elements of the flat parameter buffer, which does not depend
// on the number of ranks; so any number of ranks, at any ZeRO stage, can read back the elements
// of its own range from whichever files hold them (resharding).
#include <string>
#include <vector>

#include "core/model/param_layout.h"
#include "parallel/zero_adamw.h"

namespace qwen3 {

// A fingerprint of the layout's names, shapes and offsets: state saved for one model is refused by
// another.
uint64_t layout_fingerprint(const ParamLayout& layout);

// The file this rank writes, relative to the checkpoint directory; "" when it writes none (at
// ZeRO stage 0 every rank holds the whole state, and rank 0 alone writes it).
std::string optimizer_shard_file(const ZeroAdamW& optimizer, int rank, int world_size);

// Writes this rank's state to `path` (fsynced).
void write_optimizer_shard(const std::string& path, const ZeroAdamW& optimizer,
                           const ParamLayout& layout);

// Fills this rank's range of `optimizer` from the shard files `paths` (any number of ranks and
// ZeRO stage wrote them) and sets its step count. Elements past the layout's flat size are
// alignment padding and get zeros. Throws, naming the file, for another model's state, a
// mismatched step count, or elements no file covers.
void read_optimizer_shards(const std::vector<std::string>& paths, ZeroAdamW& optimizer,
                           const ParamLayout& layout);

}  // namespace qwen3
