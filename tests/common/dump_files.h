#pragma once
// What the dump tools (tests/tools) write for the Python checks to read: raw little-endian arrays,
// text, and the parameter layout as TSV (name, offset in elements, comma-separated shape), the
// format tests/python/qwen3_torch_ref.py's read_layout parses.
#include <fstream>
#include <string>
#include <vector>

#include "core/model/param_layout.h"
#include "core/util/error.h"

namespace qwen3::test_data {

template <class T>
void write_array(const std::string& path, const std::vector<T>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(T)));
  QWEN3_CHECK(out.good(), "cannot write '{}'", path);
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  QWEN3_CHECK(out.good(), "cannot write '{}'", path);
}

inline void write_layout_tsv(const std::string& path, const ParamLayout& layout) {
  std::string text;
  for (const ParamEntry& e : layout.entries()) {
    text += e.name + "\t" + std::to_string(e.offset) + "\t";
    for (int d = 0; d < e.shape.rank(); ++d)
      text += (d ? "," : "") + std::to_string(e.shape[d]);
    text += "\n";
  }
  write_text(path, text);
}

}  // namespace qwen3::test_data
