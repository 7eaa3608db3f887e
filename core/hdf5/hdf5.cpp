#include "core/hdf5/hdf5.h"

#include <vector>

namespace qwen3 {

void write_int64_attribute(hid_t object, const char* name, int64_t value) {
  Hdf5Handle space(H5Screate(H5S_SCALAR));
  QWEN3_HDF5_CHECK(space.get());
  Hdf5Handle attribute(
      H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  QWEN3_HDF5_CHECK(attribute.get());
  QWEN3_HDF5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value));
}

void quiet_hdf5_errors() {
  // Per thread in HDF5's thread-safe build, so remember per thread that it was done.
  thread_local bool quiet = false;
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

std::string hdf5_error_stack() {
  quiet_hdf5_errors();
  std::vector<std::string> messages;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* entry, void* out) -> herr_t {
        auto& list = *static_cast<std::vector<std::string>*>(out);
        std::string text = entry->func_name ? std::string(entry->func_name) + ": " : "";
        text += entry->desc ? entry->desc : "(no description)";
        list.push_back(std::move(text));
        return 0;
      },
      &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "no HDF5 error message";
  std::string joined;
  for (const std::string& m : messages)
    joined += (joined.empty() ? "" : "; ") + m;
  return joined;
}

namespace {
herr_t close_identifier(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    default:
      return H5Idec_ref(id);
  }
}
}  // namespace

void Hdf5Handle::reset() {
  if (id_ >= 0) {
    close_identifier(id_);
    id_ = H5I_INVALID_HID;
  }
}

void Hdf5Handle::close_checked() {
  if (id_ < 0) return;
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  QWEN3_HDF5_CHECK(close_identifier(id));
}

}  // namespace qwen3
