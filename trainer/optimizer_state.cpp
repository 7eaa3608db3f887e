#include "trainer/optimizer_state.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/hdf5/hdf5.h"
#include "core/util/error.h"
#include "core/util/file_io.h"

namespace qwen3 {

namespace {

// Bumped when the file's meaning changes; older readers then refuse newer files by name.
constexpr int64_t kShardFormatVersion = 1;

int64_t read_int_attribute(hid_t object, const std::string& path, const char* name) {
  const htri_t exists = H5Aexists(object, name);
  QWEN3_HDF5_CHECK(exists);
  QWEN3_CHECK(exists > 0, "optimizer state '{}': attribute '{}' is missing", path, name);
  Hdf5Handle attribute(H5Aopen(object, name, H5P_DEFAULT));
  QWEN3_HDF5_CHECK(attribute.get());
  int64_t value = 0;
  QWEN3_HDF5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value));
  return value;
}

struct ShardHeader {
  int64_t begin = 0, end = 0, flat_size = 0, steps = 0;
  uint64_t fingerprint = 0;
};

}  // namespace

uint64_t layout_fingerprint(const ParamLayout& layout) {
  // FNV-1a over "name shape offset;" for every tensor: any renamed, reshaped or moved tensor
  // changes it.
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&](const std::string& text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  for (const ParamEntry& e : layout.entries())
    mix(fmt::format("{} {} {};", e.name, e.shape.str(), e.offset));
  mix(fmt::format("flat {}", layout.flat_size()));
  return hash;
}

std::string optimizer_shard_file(const ZeroAdamW& optimizer, int rank, int world_size) {
  if (optimizer.options().zero_stage == 0)
    return rank == 0 ? "optimizer/shard-00000-of-00001.h5" : "";
  return fmt::format("optimizer/shard-{:05d}-of-{:05d}.h5", rank, world_size);
}

void write_optimizer_shard(const std::string& path, const ZeroAdamW& optimizer,
                           const ParamLayout& layout) {
  quiet_hdf5_errors();
  const int64_t begin = optimizer.range_begin(), end = optimizer.range_end();
  const hsize_t length[1] = {static_cast<hsize_t>(end - begin)};
  std::vector<float> host(length[0]);
  {
    Hdf5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    QWEN3_HDF5_CHECK(file.get());
    write_int64_attribute(file.get(), "format_version", kShardFormatVersion);
    write_int64_attribute(file.get(), "range_begin", begin);
    write_int64_attribute(file.get(), "range_end", end);
    write_int64_attribute(file.get(), "flat_size", layout.flat_size());
    write_int64_attribute(file.get(), "steps_taken", optimizer.steps_taken());
    write_int64_attribute(file.get(), "zero_stage", optimizer.options().zero_stage);
    write_int64_attribute(file.get(), "layout_fingerprint",
                          static_cast<int64_t>(layout_fingerprint(layout)));
    // One dataset per tensor of the update rule's state, by its name.
    for (const OptimizerStateTensor& tensor : optimizer.update_rule().state()) {
      optimizer.backend().download(tensor.values, host.data());
      Hdf5Handle space(H5Screate_simple(1, length, nullptr));
      QWEN3_HDF5_CHECK(space.get());
      // No modification times in the file: two runs that reach the same state write the same
      // bytes, which is how the resume tests compare them.
      Hdf5Handle create(H5Pcreate(H5P_DATASET_CREATE));
      QWEN3_HDF5_CHECK(create.get());
      QWEN3_HDF5_CHECK(H5Pset_obj_track_times(create.get(), false));
      Hdf5Handle dataset(H5Dcreate2(file.get(), tensor.name.c_str(), H5T_IEEE_F32LE, space.get(),
                                    H5P_DEFAULT, create.get(), H5P_DEFAULT));
      QWEN3_HDF5_CHECK(dataset.get());
      QWEN3_HDF5_CHECK(
          H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host.data()));
      dataset.close_checked();
    }
    file.close_checked();
  }
  fsync_path(path);
}

void read_optimizer_shards(const std::vector<std::string>& paths, ZeroAdamW& optimizer,
                           const ParamLayout& layout) {
  quiet_hdf5_errors();
  const int64_t begin = optimizer.range_begin(), end = optimizer.range_end();
  // Only elements below flat_size carry state; past it lies the zero padding that makes the
  // buffer divide into equal shards.
  const int64_t valid_end = std::min(end, layout.flat_size());
  const uint64_t fingerprint = layout_fingerprint(layout);
  const std::vector<OptimizerStateTensor> tensors = optimizer.update_rule().state();
  std::vector<std::vector<float>> state(tensors.size());
  for (auto& s : state)
    s.assign(static_cast<size_t>(end - begin), 0.0f);
  int64_t covered = 0;
  int64_t steps = -1;
  std::string steps_from;
  for (const std::string& path : paths) {
    Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    QWEN3_CHECK(file.valid(), "optimizer state '{}': cannot open as HDF5: {}", path,
                hdf5_error_stack());
    const int64_t version = read_int_attribute(file.get(), path, "format_version");
    QWEN3_CHECK(version == kShardFormatVersion,
                "optimizer state '{}': format version {}, this program reads version {}", path,
                version, kShardFormatVersion);
    ShardHeader h;
    h.begin = read_int_attribute(file.get(), path, "range_begin");
    h.end = read_int_attribute(file.get(), path, "range_end");
    h.flat_size = read_int_attribute(file.get(), path, "flat_size");
    h.steps = read_int_attribute(file.get(), path, "steps_taken");
    h.fingerprint =
        static_cast<uint64_t>(read_int_attribute(file.get(), path, "layout_fingerprint"));
    QWEN3_CHECK(h.fingerprint == fingerprint && h.flat_size == layout.flat_size(),
                "optimizer state '{}' belongs to another model (flat size {}, this model's {}): "
                "the model changed since it was written, or it comes from another model's "
                "checkpoint (init_from)",
                path, h.flat_size, layout.flat_size());
    QWEN3_CHECK(h.begin >= 0 && h.begin <= h.end, "optimizer state '{}': bad range [{}, {})", path,
                h.begin, h.end);
    if (steps < 0) {
      steps = h.steps;
      steps_from = path;
    }
    QWEN3_CHECK(h.steps == steps,
                "optimizer state '{}' was taken after {} steps but '{}' after {}: the files come "
                "from different checkpoints",
                path, h.steps, steps_from, steps);
    const int64_t lo = std::max(begin, h.begin), hi = std::min(valid_end, h.end);
    if (lo >= hi) continue;
    const hsize_t start[1] = {static_cast<hsize_t>(lo - h.begin)};
    const hsize_t count[1] = {static_cast<hsize_t>(hi - lo)};
    for (size_t k = 0; k < tensors.size(); ++k) {
      const char* name = tensors[k].name.c_str();
      Hdf5Handle dataset(H5Dopen2(file.get(), name, H5P_DEFAULT));
      QWEN3_CHECK(dataset.valid(), "optimizer state '{}': dataset '{}' is missing", path, name);
      Hdf5Handle file_space(H5Dget_space(dataset.get()));
      QWEN3_HDF5_CHECK(file_space.get());
      const hssize_t points = H5Sget_simple_extent_npoints(file_space.get());
      QWEN3_CHECK(points == h.end - h.begin,
                  "optimizer state '{}': dataset '{}' holds {} values, its range [{}, {}) needs {}",
                  path, name, points, h.begin, h.end, h.end - h.begin);
      QWEN3_HDF5_CHECK(
          H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr));
      Hdf5Handle memory_space(H5Screate_simple(1, count, nullptr));
      QWEN3_HDF5_CHECK(memory_space.get());
      QWEN3_HDF5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memory_space.get(),
                               file_space.get(), H5P_DEFAULT, state[k].data() + (lo - begin)));
    }
    covered += hi - lo;
  }
  // Files come from one checkpoint's disjoint shards (or one whole-buffer file), so the covered
  // count equals the range exactly when nothing is missing.
  QWEN3_CHECK(covered == std::max<int64_t>(0, valid_end - begin),
              "optimizer state: the files cover {} of the {} elements of this rank's range "
              "[{}, {}); a shard file is missing from the checkpoint",
              covered, std::max<int64_t>(0, valid_end - begin), begin, valid_end);
  for (size_t k = 0; k < tensors.size(); ++k)
    optimizer.backend().upload(state[k].data(), tensors[k].values);
  optimizer.set_steps_taken(steps < 0 ? 0 : steps);
}

}  // namespace qwen3
