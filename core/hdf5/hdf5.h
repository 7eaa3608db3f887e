#pragma once
// HDF5 calls are checked with QWEN3_HDF5_CHECK, the HDF5 member of the project's one family of
// call-check macros: it reports the call, file, line and rank, plus HDF5's own error stack.
// Handles are RAII: a thrown error never leaks an open file.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

#include "core/util/error.h"

namespace qwen3 {

// The messages on this thread's HDF5 error stack, outermost first, joined by "; ". Also turns off
// HDF5's habit of printing the stack to stderr itself: our errors carry the text instead.
std::string hdf5_error_stack();

// Call before any HDF5 call on a thread (HDF5 keeps its error-printing switch per thread).
void quiet_hdf5_errors();

// Writes a scalar little-endian int64 attribute on a file, group or dataset.
void write_int64_attribute(hid_t object, const char* name, int64_t value);

// Owns one HDF5 identifier (file, dataset, dataspace, attribute, type or property list).
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  explicit Hdf5Handle(hid_t id) : id_(id) {}
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  ~Hdf5Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes with the right H5*close for the identifier's type; errors on close are ignored
  // (destructors cannot throw), which loses nothing for files we only read.
  void reset();
  // Closes and reports a failure, for files being written, where a failed close means lost data.
  void close_checked();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace qwen3

#define QWEN3_HDF5_CHECK(call) \
  QWEN3_CALL_CHECK("HDF5", call, status_ >= 0, ::qwen3::hdf5_error_stack())
