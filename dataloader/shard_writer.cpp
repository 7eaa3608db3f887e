#include "dataloader/shard_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dataloader/shard_format.h"

namespace qwen3 {

namespace {

// Variable-length UTF-8, which is what h5py writes for a Python str and reads back as one.
void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Hdf5Handle type(H5Tcopy(H5T_C_S1));
  QWEN3_HDF5_CHECK(type.get());
  QWEN3_HDF5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE));
  QWEN3_HDF5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  Hdf5Handle space(H5Screate(H5S_SCALAR));
  QWEN3_HDF5_CHECK(space.get());
  Hdf5Handle attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  QWEN3_HDF5_CHECK(attribute.get());
  const char* text = value.c_str();
  QWEN3_HDF5_CHECK(H5Awrite(attribute.get(), type.get(), &text));
}

}  // namespace

ShardWriter::ShardWriter(std::string path, ShardMetadata metadata, int64_t chunk_tokens)
    : path_(std::move(path)),
      partial_path_(path_ + ".partial"),
      metadata_(std::move(metadata)),
      chunk_tokens_(chunk_tokens) {
  QWEN3_CHECK(chunk_tokens_ > 0, "shard chunk size must be positive, got {}", chunk_tokens_);
  QWEN3_CHECK(
      metadata_.vocab_size > 0 && metadata_.eos_id >= 0 && metadata_.eos_id < metadata_.vocab_size,
      "shard '{}': eos_id {} must be in [0, vocab_size {})", path_, metadata_.eos_id,
      metadata_.vocab_size);
  quiet_hdf5_errors();
  file_ = Hdf5Handle(H5Fcreate(partial_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!file_.valid())
    throw_error(
        fmt::format("cannot create shard file '{}': {}", partial_path_, hdf5_error_stack()));

  const hsize_t initial[1] = {0}, unlimited[1] = {H5S_UNLIMITED};
  Hdf5Handle space(H5Screate_simple(1, initial, unlimited));
  QWEN3_HDF5_CHECK(space.get());
  Hdf5Handle create(H5Pcreate(H5P_DATASET_CREATE));
  QWEN3_HDF5_CHECK(create.get());
  const hsize_t chunk[1] = {static_cast<hsize_t>(chunk_tokens_)};
  QWEN3_HDF5_CHECK(H5Pset_chunk(create.get(), 1, chunk));
  // No modification times in the file: the same documents give the same bytes, so a resumed
  // qwen3-prep run can be compared with an uninterrupted one file for file.
  QWEN3_HDF5_CHECK(H5Pset_obj_track_times(create.get(), false));
  tokens_ = Hdf5Handle(H5Dcreate2(file_.get(), kTokensDataset, H5T_STD_U32LE, space.get(),
                                  H5P_DEFAULT, create.get(), H5P_DEFAULT));
  QWEN3_HDF5_CHECK(tokens_.get());
  buffer_.reserve(static_cast<size_t>(chunk_tokens_));
  doc_offsets_.push_back(0);
}

ShardWriter::~ShardWriter() {
  if (finished_) return;
  tokens_.reset();
  file_.reset();
  std::remove(partial_path_.c_str());
}

void ShardWriter::add_document(const uint32_t* tokens, int64_t count) {
  QWEN3_CHECK(!finished_, "shard '{}' is already finished", path_);
  QWEN3_CHECK(count > 0, "shard '{}': documents must not be empty", path_);
  // Checked before any is buffered, so a refused document leaves nothing behind.
  for (int64_t i = 0; i < count; ++i)
    QWEN3_CHECK(tokens[i] < static_cast<uint64_t>(metadata_.vocab_size),
                "shard '{}': token {} is not below vocab_size {}", path_, tokens[i],
                metadata_.vocab_size);
  for (int64_t i = 0; i < count; ++i) {
    buffer_.push_back(tokens[i]);
    if (static_cast<int64_t>(buffer_.size()) == chunk_tokens_) flush_buffer();
  }
  num_tokens_ += count;
  doc_offsets_.push_back(static_cast<uint64_t>(num_tokens_));
}

void ShardWriter::flush_buffer() {
  if (buffer_.empty()) return;
  const hsize_t start[1] = {static_cast<hsize_t>(written_tokens_)};
  const hsize_t count[1] = {buffer_.size()};
  const hsize_t new_size[1] = {static_cast<hsize_t>(written_tokens_) + buffer_.size()};
  QWEN3_HDF5_CHECK(H5Dset_extent(tokens_.get(), new_size));
  Hdf5Handle file_space(H5Dget_space(tokens_.get()));
  QWEN3_HDF5_CHECK(file_space.get());
  QWEN3_HDF5_CHECK(
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr));
  Hdf5Handle memory_space(H5Screate_simple(1, count, nullptr));
  QWEN3_HDF5_CHECK(memory_space.get());
  QWEN3_HDF5_CHECK(H5Dwrite(tokens_.get(), H5T_NATIVE_UINT32, memory_space.get(), file_space.get(),
                            H5P_DEFAULT, buffer_.data()));
  written_tokens_ += static_cast<int64_t>(buffer_.size());
  buffer_.clear();
}

void ShardWriter::finish(bool publish) {
  QWEN3_CHECK(!finished_, "shard '{}' is already finished", path_);
  QWEN3_CHECK(num_tokens_ > 0, "shard '{}' has no documents; an empty shard is not written", path_);
  flush_buffer();
  tokens_.close_checked();

  const hsize_t size[1] = {doc_offsets_.size()};
  Hdf5Handle space(H5Screate_simple(1, size, nullptr));
  QWEN3_HDF5_CHECK(space.get());
  Hdf5Handle create(H5Pcreate(H5P_DATASET_CREATE));
  QWEN3_HDF5_CHECK(create.get());
  QWEN3_HDF5_CHECK(H5Pset_obj_track_times(create.get(), false));
  Hdf5Handle offsets(H5Dcreate2(file_.get(), kDocOffsetsDataset, H5T_STD_U64LE, space.get(),
                                H5P_DEFAULT, create.get(), H5P_DEFAULT));
  QWEN3_HDF5_CHECK(offsets.get());
  QWEN3_HDF5_CHECK(H5Dwrite(offsets.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                            doc_offsets_.data()));
  offsets.close_checked();

  write_string_attribute(file_.get(), kFormatAttribute, kShardFormatName);
  write_int64_attribute(file_.get(), kFormatVersionAttribute, kShardFormatVersion);
  write_int64_attribute(file_.get(), kVocabSizeAttribute, metadata_.vocab_size);
  write_int64_attribute(file_.get(), kEosIdAttribute, metadata_.eos_id);
  write_string_attribute(file_.get(), kTokenizerAttribute, metadata_.tokenizer);
  file_.close_checked();
  finished_ = true;
  if (publish && std::rename(partial_path_.c_str(), path_.c_str()) != 0)
    throw_error(
        fmt::format("cannot rename '{}' to '{}': {}", partial_path_, path_, std::strerror(errno)));
}

}  // namespace qwen3
