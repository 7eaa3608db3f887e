#include "dataloader/shard_reader.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/util/format.h"
#include "dataloader/shard_format.h"

namespace qwen3 {

namespace {

constexpr const char* kFormatHint = "see docs/data-format.md for the shard layout";

[[noreturn]] void shard_error(const std::string& path, const std::string& problem) {
  throw_error(fmt::format("data shard '{}': {}", path, problem));
}

// An attribute holding one value of `type_class`, opened with its type; `what` ("one integer")
// is for the message when it is missing, of another class, or an array.
struct ScalarAttribute {
  Hdf5Handle attribute, type;
};
ScalarAttribute open_scalar_attribute(hid_t object, const std::string& path, const char* name,
                                      H5T_class_t type_class, const char* what) {
  const htri_t exists = H5Aexists(object, name);
  QWEN3_HDF5_CHECK(exists);
  if (exists == 0)
    shard_error(path,
                fmt::format("has no attribute '{}' on its root group ({})", name, kFormatHint));
  ScalarAttribute a{Hdf5Handle(H5Aopen(object, name, H5P_DEFAULT)), Hdf5Handle()};
  QWEN3_HDF5_CHECK(a.attribute.get());
  a.type = Hdf5Handle(H5Aget_type(a.attribute.get()));
  QWEN3_HDF5_CHECK(a.type.get());
  Hdf5Handle space(H5Aget_space(a.attribute.get()));
  QWEN3_HDF5_CHECK(space.get());
  // One value: an array would be read into a buffer sized for one.
  if (H5Tget_class(a.type.get()) != type_class || H5Sget_simple_extent_npoints(space.get()) != 1)
    shard_error(path, fmt::format("attribute '{}' is {} but must be {}", name,
                                  describe_hdf5_type(a.type.get()), what));
  return a;
}

int64_t read_integer_attribute(hid_t object, const std::string& path, const char* name) {
  const ScalarAttribute a = open_scalar_attribute(object, path, name, H5T_INTEGER, "one integer");
  int64_t value = 0;
  QWEN3_HDF5_CHECK(H5Aread(a.attribute.get(), H5T_NATIVE_INT64, &value));
  return value;
}

std::string read_string_attribute(hid_t object, const std::string& path, const char* name) {
  const ScalarAttribute a = open_scalar_attribute(object, path, name, H5T_STRING, "one string");
  const hid_t attribute = a.attribute.get(), type = a.type.get();
  const htri_t variable = H5Tis_variable_str(type);
  QWEN3_HDF5_CHECK(variable);
  if (variable > 0) {
    // h5py writes Python str attributes this way: a pointer HDF5 allocates for us.
    Hdf5Handle memory_type(H5Tcopy(H5T_C_S1));
    QWEN3_HDF5_CHECK(memory_type.get());
    QWEN3_HDF5_CHECK(H5Tset_size(memory_type.get(), H5T_VARIABLE));
    QWEN3_HDF5_CHECK(H5Tset_cset(memory_type.get(), H5Tget_cset(type)));
    char* text = nullptr;
    QWEN3_HDF5_CHECK(H5Aread(attribute, memory_type.get(), &text));
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type);
  std::string value(size, '\0');
  QWEN3_HDF5_CHECK(H5Aread(attribute, type, value.data()));
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

// Opens a 1-D dataset, checking that it exists and has one dimension; returns its length.
Hdf5Handle open_vector_dataset(hid_t file, const std::string& path, const char* name,
                               int64_t& length) {
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  QWEN3_HDF5_CHECK(exists);
  if (exists == 0) shard_error(path, fmt::format("has no dataset '{}' ({})", name, kFormatHint));
  // No chunk cache: chunks are uncompressed, so HDF5 then reads a window straight from the file
  // instead of pulling a whole 1 MiB chunk through the cache for 8 KiB of it.
  Hdf5Handle access(H5Pcreate(H5P_DATASET_ACCESS));
  QWEN3_HDF5_CHECK(access.get());
  QWEN3_HDF5_CHECK(H5Pset_chunk_cache(access.get(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0,
                                      H5D_CHUNK_CACHE_W0_DEFAULT));
  Hdf5Handle dataset(H5Dopen2(file, name, access.get()));
  if (!dataset.valid())
    shard_error(path, fmt::format("'{}' is not a readable dataset ({})", name, hdf5_error_stack()));
  Hdf5Handle space(H5Dget_space(dataset.get()));
  QWEN3_HDF5_CHECK(space.get());
  const int rank = H5Sget_simple_extent_ndims(space.get());
  QWEN3_HDF5_CHECK(rank);
  if (rank != 1)
    shard_error(path, fmt::format("dataset '{}' has {} dimensions, expected 1", name, rank));
  hsize_t dims[1] = {0};
  QWEN3_HDF5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr));
  length = static_cast<int64_t>(dims[0]);
  return dataset;
}

bool is_integer_type(hid_t type, size_t size, H5T_sign_t sign) {
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == size &&
         H5Tget_sign(type) == sign;
}

}  // namespace

void check_same_tokenizer(const ShardInfo& shard, const ShardInfo& reference,
                          const std::string& what) {
  if (shard.tokenizer != reference.tokenizer || shard.eos_id != reference.eos_id)
    throw_error(
        fmt::format("{} mixes tokenizers: '{}' has tokenizer '{}' with eos_id {}, but "
                    "'{}' has '{}' with eos_id {}",
                    what, shard.path, shard.tokenizer, shard.eos_id, reference.path,
                    reference.tokenizer, reference.eos_id));
}

std::string describe_hdf5_type(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    case H5T_FLOAT:
      return fmt::format("float{}", bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "a compound type";
    case H5T_ARRAY:
      return "an array type";
    case H5T_ENUM:
      return "an enum";
    default:
      return "an unsupported type";
  }
}

ShardReader::ShardReader(std::string path) {
  info_.path = std::move(path);
  try {
    validate();
  } catch (const Error& e) {
    release();
    rethrow_naming_shard(e);
  }
}

void ShardReader::rethrow_naming_shard(const Error& e) const {
  // Every message names the shard, including a failed HDF5 call's.
  if (std::string(e.what()).find(info_.path) != std::string::npos) throw e;
  shard_error(info_.path, e.what());
}

void ShardReader::validate() {
  const std::string& p = info_.path;
  quiet_hdf5_errors();
  struct stat status {};
  if (stat(p.c_str(), &status) != 0) shard_error(p, "file does not exist");
  if (S_ISDIR(status.st_mode)) shard_error(p, "is a directory, not a file");
  const htri_t is_hdf5 = H5Fis_hdf5(p.c_str());
  if (is_hdf5 < 0) shard_error(p, "cannot be read (" + hdf5_error_stack() + ")");
  if (is_hdf5 == 0)
    shard_error(
        p, fmt::format("is not an HDF5 file ({} bytes without an HDF5 signature)", status.st_size));
  open_file_handle();

  // Attributes first: for an HDF5 file that is not a shard at all, 'format' says so best.
  const hid_t root = file_.get();
  const std::string format = read_string_attribute(root, p, kFormatAttribute);
  if (format != kShardFormatName)
    shard_error(p, fmt::format("attribute '{}' is '{}', expected '{}'", kFormatAttribute, format,
                               kShardFormatName));
  info_.format_version = read_integer_attribute(root, p, kFormatVersionAttribute);
  if (info_.format_version < 1 || info_.format_version > kShardFormatVersion)
    shard_error(p, fmt::format("has format_version {}, but this build reads versions 1 to {}",
                               info_.format_version, kShardFormatVersion));
  info_.vocab_size = read_integer_attribute(root, p, kVocabSizeAttribute);
  info_.eos_id = read_integer_attribute(root, p, kEosIdAttribute);
  info_.tokenizer = read_string_attribute(root, p, kTokenizerAttribute);
  if (info_.vocab_size <= 0)
    shard_error(p, fmt::format("attribute 'vocab_size' is {}, must be positive", info_.vocab_size));
  if (info_.eos_id < 0 || info_.eos_id >= info_.vocab_size)
    shard_error(p, fmt::format("attribute 'eos_id' is {}, must be in [0, vocab_size {})",
                               info_.eos_id, info_.vocab_size));

  open_datasets();
  {
    Hdf5Handle type(H5Dget_type(tokens_.get()));
    QWEN3_HDF5_CHECK(type.get());
    if (!is_integer_type(type.get(), 4, H5T_SGN_NONE))
      shard_error(p, fmt::format("dataset '{}' has dtype {}, expected uint32 (Qwen token ids "
                                 "exceed 65535 and are never negative)",
                                 kTokensDataset, describe_hdf5_type(type.get())));
  }
  if (info_.num_tokens == 0) shard_error(p, "is empty: dataset 'tokens' has 0 tokens");
  {
    Hdf5Handle type(H5Dget_type(offsets_.get()));
    QWEN3_HDF5_CHECK(type.get());
    if (H5Tget_class(type.get()) != H5T_INTEGER)
      shard_error(p, fmt::format("dataset '{}' has dtype {}, expected uint64", kDocOffsetsDataset,
                                 describe_hdf5_type(type.get())));
  }
  if (info_.num_documents < 1)
    shard_error(p, fmt::format("dataset '{}' has {} entries; it needs num_documents + 1 >= 2",
                               kDocOffsetsDataset, info_.num_documents + 1));

  const std::vector<int64_t> offsets = read_doc_offsets();
  if (offsets.front() != 0)
    shard_error(p, fmt::format("{}[0] is {}, must be 0", kDocOffsetsDataset, offsets.front()));
  for (size_t d = 1; d < offsets.size(); ++d)
    if (offsets[d] <= offsets[d - 1])
      shard_error(p, fmt::format("{} must increase strictly, but entry {} is {} after {} "
                                 "(document {} would be empty or negative)",
                                 kDocOffsetsDataset, d, offsets[d], offsets[d - 1], d - 1));
  if (offsets.back() != info_.num_tokens)
    shard_error(p, fmt::format("the last {} entry is {}, but the shard has {} tokens",
                               kDocOffsetsDataset, offsets.back(), info_.num_tokens));
  for (size_t d = 0; d < offsets.size(); d += kSparseStride)
    sparse_offsets_.push_back(offsets[d]);
}

void ShardReader::open_file_handle() {
  quiet_hdf5_errors();
  const std::string& p = info_.path;
  Hdf5Handle file(H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) {
    const std::string stack = hdf5_error_stack();
    if (stack.find("truncated") != std::string::npos)
      shard_error(p,
                  "is truncated: the file is shorter than HDF5's header says it should be (an "
                  "interrupted copy or write?). HDF5: " +
                      stack);
    shard_error(p, "is damaged and cannot be opened as HDF5: " + stack);
  }
  file_ = std::move(file);
}

void ShardReader::open_datasets() {
  const std::string& p = info_.path;
  const bool first_open = info_.num_tokens == 0 && info_.num_documents == 0;
  int64_t tokens = 0, offsets = 0;
  tokens_ = open_vector_dataset(file_.get(), p, kTokensDataset, tokens);
  tokens_space_ = Hdf5Handle(H5Dget_space(tokens_.get()));
  QWEN3_HDF5_CHECK(tokens_space_.get());
  offsets_ = open_vector_dataset(file_.get(), p, kDocOffsetsDataset, offsets);
  offsets_space_ = Hdf5Handle(H5Dget_space(offsets_.get()));
  QWEN3_HDF5_CHECK(offsets_space_.get());
  if (first_open) {
    info_.num_tokens = tokens;
    info_.num_documents = offsets - 1;
  } else if (tokens != info_.num_tokens || offsets - 1 != info_.num_documents) {
    shard_error(p, fmt::format("changed on disk while in use: it had {} tokens in {} documents, "
                               "now {} in {}",
                               info_.num_tokens, info_.num_documents, tokens, offsets - 1));
  }
}

void ShardReader::open() {
  quiet_hdf5_errors();  // also on the prefetch thread: HDF5's print switch is per thread
  if (file_.valid()) return;
  try {
    open_file_handle();
    open_datasets();
  } catch (const Error& e) {
    release();  // all or nothing: never half open
    rethrow_naming_shard(e);
  }
}

void ShardReader::release() {
  offsets_space_.reset();
  offsets_.reset();
  tokens_space_.reset();
  tokens_.reset();
  file_.reset();
}

void ShardReader::read_range(bool tokens, int64_t begin, int64_t count, void* out) {
  open();
  const hsize_t start[1] = {static_cast<hsize_t>(begin)};
  const hsize_t size[1] = {static_cast<hsize_t>(count)};
  const hid_t space = tokens ? tokens_space_.get() : offsets_space_.get();
  QWEN3_HDF5_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, size, nullptr));
  Hdf5Handle memory_space(H5Screate_simple(1, size, nullptr));
  QWEN3_HDF5_CHECK(memory_space.get());
  if (H5Dread(tokens ? tokens_.get() : offsets_.get(),
              tokens ? H5T_NATIVE_UINT32 : H5T_NATIVE_INT64, memory_space.get(), space, H5P_DEFAULT,
              out) < 0)
    shard_error(info_.path, fmt::format("reading {} [{}, {}) failed; the file may be damaged ({})",
                                        tokens ? kTokensDataset : kDocOffsetsDataset, begin,
                                        begin + count, hdf5_error_stack()));
}

void ShardReader::read_tokens(int64_t begin, int64_t count, uint32_t* out) {
  QWEN3_CHECK(begin >= 0 && count >= 0 && begin + count <= info_.num_tokens,
              "data shard '{}': read of tokens [{}, {}) is outside its {} tokens", info_.path,
              begin, begin + count, info_.num_tokens);
  if (count > 0) read_range(true, begin, count, out);
}

std::vector<int64_t> ShardReader::read_doc_offsets() {
  std::vector<int64_t> offsets(static_cast<size_t>(info_.num_documents + 1));
  read_range(false, 0, info_.num_documents + 1, offsets.data());
  return offsets;
}

void ShardReader::document_starts(int64_t begin, int64_t end, std::vector<int64_t>& out) {
  out.clear();
  // The last sampled offset at or before `begin`; documents after it are read in blocks of one
  // stride until one starts at or after `end`.
  const auto after = std::upper_bound(sparse_offsets_.begin(), sparse_offsets_.end(), begin);
  int64_t first = (after - sparse_offsets_.begin() - 1) * kSparseStride;
  const int64_t num_offsets = info_.num_documents + 1;
  while (first < num_offsets) {
    const int64_t count = std::min<int64_t>(kSparseStride, num_offsets - first);
    block_.resize(static_cast<size_t>(count));
    read_range(false, first, count, block_.data());
    for (const int64_t offset : block_) {
      if (offset >= end) return;
      if (offset > begin) out.push_back(offset);
    }
    first += count;
  }
}

}  // namespace qwen3
