#include "dataloader/prep_progress.h"

#include <nlohmann/json.hpp>

#include "core/util/error.h"

namespace qwen3 {

namespace {

using nlohmann::json;

json position_json(const DocumentPosition& p) {
  return {{"document", p.document},
          {"file", p.file},
          {"offset", p.location.offset},
          {"line", p.location.line}};
}

DocumentPosition position_from(const json& j) {
  return {j.at("document").get<int64_t>(),
          j.at("file").get<int64_t>(),
          {j.at("offset").get<int64_t>(), j.at("line").get<int64_t>()}};
}

json split_json(const SplitProgress& split) {
  json shards = json::array();
  for (const CompletedShard& s : split.shards)
    shards.push_back({{"file", s.file},
                      {"tokens", s.tokens},
                      {"documents", s.documents},
                      {"bytes", s.bytes},
                      {"crc32", s.crc32}});
  return {{"next", position_json(split.next)},
          {"empty_documents", split.empty_documents},
          {"invalid_utf8_documents", split.invalid_utf8_documents},
          {"shards", shards}};
}

SplitProgress split_from(const json& j) {
  SplitProgress split;
  split.next = position_from(j.at("next"));
  split.empty_documents = j.at("empty_documents").get<int64_t>();
  split.invalid_utf8_documents = j.at("invalid_utf8_documents").get<int64_t>();
  for (const json& s : j.at("shards"))
    split.shards.push_back({s.at("file").get<std::string>(), s.at("tokens").get<int64_t>(),
                            s.at("documents").get<int64_t>(), s.at("bytes").get<uint64_t>(),
                            s.at("crc32").get<uint32_t>()});
  return split;
}

}  // namespace

std::string progress_to_json(const PrepProgressRecord& record) {
  const json j = {{"settings", json::parse(record.settings)},
                  {"finished", record.finished},
                  {"train", split_json(record.train)},
                  {"val", split_json(record.val)}};
  return j.dump(2) + "\n";
}

PrepProgressRecord progress_from_json(const std::string& text, const std::string& path) {
  try {
    const json j = json::parse(text);
    PrepProgressRecord record;
    record.settings = j.at("settings").dump();
    record.finished = j.at("finished").get<bool>();
    record.train = split_from(j.at("train"));
    record.val = split_from(j.at("val"));
    return record;
  } catch (const json::exception& e) {
    throw_error(
        fmt::format("'{}' is not a qwen3-prep progress record ({}); remove the output "
                    "directory and start again",
                    path, e.what()));
  }
}

std::string settings_difference(const std::string& recorded, const std::string& current) {
  const json before = json::parse(recorded), now = json::parse(current);
  for (auto it = now.begin(); it != now.end(); ++it) {
    const auto old = before.find(it.key());
    if (old == before.end()) return fmt::format("'{}' was not recorded", it.key());
    if (*old == it.value()) continue;
    if (it.key() == "files" && old->is_array() && it.value().is_array()) {
      const json& a = *old;
      const json& b = it.value();
      for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i])
          return fmt::format("input file {} was {} and is now {}", i + 1, a[i].dump(), b[i].dump());
      return fmt::format("the inputs were {} files and are now {}", a.size(), b.size());
    }
    return fmt::format("'{}' was {} and is now {}", it.key(), old->dump(), it.value().dump());
  }
  return "";
}

}  // namespace qwen3
