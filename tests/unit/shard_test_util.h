#pragma once
// Helpers for the dataloader tests: a fresh directory per test, shards written through the
// project's writer, and hand-built HDF5 files for the malformed cases the writer refuses to make.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/hdf5/hdf5.h"
#include "core/util/rng.h"
#include "dataloader/shard_reader.h"
#include "dataloader/shard_writer.h"
#include "dataloader/source.h"

namespace qwen3::test {

// A new empty directory under gtest's temp dir, named after the running test.
inline std::string fresh_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = testing::TempDir() + "qwen3_" + info->test_suite_name() + "_" + info->name() +
                    "_" + std::to_string(getpid());
  std::string command = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  EXPECT_EQ(std::system(command.c_str()), 0);
  return dir;
}

using Documents = std::vector<std::vector<uint32_t>>;

// Documents of random lengths in [min_len, max_len] with ids below vocab, each ending in eos.
inline Documents random_documents(int count, int min_len, int max_len, uint32_t vocab, uint32_t eos,
                                  uint64_t seed) {
  Documents docs;
  uint64_t counter = 0;
  for (int d = 0; d < count; ++d) {
    const int len = min_len + static_cast<int>(random_bits(seed, 1, counter++) %
                                               static_cast<uint64_t>(max_len - min_len + 1));
    std::vector<uint32_t> doc;
    for (int t = 0; t + 1 < len; ++t)
      doc.push_back(static_cast<uint32_t>(random_bits(seed, 2, counter++) % (vocab - 1)));
    doc.push_back(eos);
    docs.push_back(std::move(doc));
  }
  return docs;
}

// Every document of every shard matching `pattern`, in order.
inline Documents read_documents(const std::string& pattern) {
  Documents docs;
  for (const std::string& path : expand_shard_pattern(pattern, "test")) {
    ShardReader shard(path);
    std::vector<uint32_t> tokens(static_cast<size_t>(shard.info().num_tokens));
    shard.read_tokens(0, shard.info().num_tokens, tokens.data());
    const std::vector<int64_t> offsets = shard.read_doc_offsets();
    for (size_t d = 0; d + 1 < offsets.size(); ++d)
      docs.emplace_back(tokens.begin() + offsets[d], tokens.begin() + offsets[d + 1]);
  }
  return docs;
}

inline void write_shard(const std::string& path, const Documents& docs, int64_t vocab = 1024,
                        int64_t eos = 1023, const std::string& tokenizer = "test-tokenizer",
                        int64_t chunk = 4096) {
  ShardWriter writer(path, {vocab, eos, tokenizer}, chunk);
  for (const auto& d : docs)
    writer.add_document(d.data(), static_cast<int64_t>(d.size()));
  writer.finish();
}

// A hand-built file: any dataset type, any attributes, or none.
class RawHdf5File {
 public:
  explicit RawHdf5File(const std::string& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {}
  template <class T>
  void dataset(const char* name, hid_t file_type, hid_t memory_type, const std::vector<T>& data) {
    const hsize_t dims[1] = {data.size()};
    Hdf5Handle space(H5Screate_simple(1, dims, nullptr));
    Hdf5Handle set(H5Dcreate2(file_.get(), name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT));
    if (!data.empty()) H5Dwrite(set.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
  }
  void int_attribute(const char* name, int64_t value) {
    Hdf5Handle space(H5Screate(H5S_SCALAR));
    Hdf5Handle a(
        H5Acreate2(file_.get(), name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    H5Awrite(a.get(), H5T_NATIVE_INT64, &value);
  }
  // Fixed-length ASCII, the other string form HDF5 files carry.
  void string_attribute(const char* name, const std::string& value) {
    Hdf5Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), value.size() + 1);
    Hdf5Handle space(H5Screate(H5S_SCALAR));
    Hdf5Handle a(H5Acreate2(file_.get(), name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    H5Awrite(a.get(), type.get(), value.c_str());
  }
  // An array of `count` fixed-length strings, where the format wants one.
  void string_array_attribute(const char* name, const std::string& value, hsize_t count) {
    Hdf5Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), value.size());
    Hdf5Handle space(H5Screate_simple(1, &count, nullptr));
    Hdf5Handle a(H5Acreate2(file_.get(), name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    std::string all;
    for (hsize_t i = 0; i < count; ++i)
      all += value;
    H5Awrite(a.get(), type.get(), all.data());
  }
  void standard_attributes(int64_t vocab = 1024, int64_t eos = 1023) {
    string_attribute("format", "qwen3-train-shard");
    int_attribute("format_version", 1);
    int_attribute("vocab_size", vocab);
    int_attribute("eos_id", eos);
    string_attribute("tokenizer", "test-tokenizer");
  }

 private:
  Hdf5Handle file_;
};

}  // namespace qwen3::test
