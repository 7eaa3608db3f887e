#include "dataloader/tokenizer/tokenizer_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "core/util/file_io.h"
#include "dataloader/tokenizer/pre_tokenizer.h"

namespace qwen3 {

namespace {

using nlohmann::json;

bool is_file(const std::string& path) {
  struct stat status {};
  return stat(path.c_str(), &status) == 0 && S_ISREG(status.st_mode);
}

json parse_json_file(const std::string& path, const std::string& what) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw_error(fmt::format("{} '{}' is not valid JSON: {}", what, path, e.what()));
  }
}

std::vector<std::pair<std::string, uint32_t>> vocab_from_json(const json& object,
                                                              const std::string& where) {
  QWEN3_CHECK(object.is_object(), "{}: the vocabulary must be a JSON object of token: id", where);
  std::vector<std::pair<std::string, uint32_t>> vocab;
  vocab.reserve(object.size());
  for (auto it = object.begin(); it != object.end(); ++it) {
    QWEN3_CHECK(it.value().is_number_unsigned(),
                "{}: token '{}' has id {}, not an unsigned integer", where, it.key(),
                it.value().dump());
    const auto id = it.value().get<uint64_t>();
    QWEN3_CHECK(id < (uint64_t{1} << 31), "{}: token '{}' has id {}, too large", where, it.key(),
                id);
    vocab.emplace_back(it.key(), static_cast<uint32_t>(id));
  }
  return vocab;
}

// "left right", as Hugging Face reads merges: exactly one space (vocabulary strings hold none,
// since the byte-level alphabet writes a space as Ġ). False for anything else.
bool split_merge(const std::string& line, std::pair<std::string, std::string>& merge) {
  const size_t space = line.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
      line.find(' ', space + 1) != std::string::npos)
    return false;
  merge = {line.substr(0, space), line.substr(space + 1)};
  return true;
}

std::vector<std::pair<std::string, std::string>> read_merges_txt(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::pair<std::string, std::string>> merges;
  size_t begin = 0, line_number = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    std::pair<std::string, std::string> merge;
    QWEN3_CHECK(split_merge(line, merge),
                "merges.txt '{}':{}: '{}' is not a merge (two tokens separated by one space)", path,
                line_number, line);
    merges.push_back(std::move(merge));
  }
  return merges;
}

// A key of a JSON object, or null when absent.
const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

bool is_false_or_absent(const json& value) {
  return value.is_null() || value == false;
}
bool is_empty_or_absent(const json& value) {
  return value.is_null() || value == "";
}

void check_qwen2_pipeline(const json& root, const std::string& where) {
  const auto refuse = [&](const char* key, const json& value, const char* expected) {
    throw_error(
        fmt::format("{}: {} is {}, expected {}; this tokenizer implements Qwen2's "
                    "byte-level BPE only",
                    where, key, value.dump(), expected));
  };
  const json& normalizer = member(root, "normalizer");
  if (member(normalizer, "type") != "NFC") refuse("normalizer", normalizer, R"({"type": "NFC"})");

  const json& pre = member(root, "pre_tokenizer");
  const json& steps = member(pre, "pretokenizers");
  const char* expected_pre =
      "a Sequence of Split (Qwen2's regex, Isolated) and ByteLevel (add_prefix_space and "
      "use_regex false)";
  if (member(pre, "type") != "Sequence" || !steps.is_array() || steps.size() != 2)
    refuse("pre_tokenizer", pre, expected_pre);
  const json& split = steps[0];
  const json& byte_level = steps[1];
  if (member(split, "type") != "Split" ||
      member(member(split, "pattern"), "Regex") != Qwen2SplitPattern::huggingface_text() ||
      member(split, "behavior") != "Isolated" || !is_false_or_absent(member(split, "invert")) ||
      member(byte_level, "type") != "ByteLevel" ||
      !is_false_or_absent(member(byte_level, "add_prefix_space")) ||
      !is_false_or_absent(member(byte_level, "use_regex")))
    refuse("pre_tokenizer", pre, expected_pre);

  const json& model = member(root, "model");
  if (member(model, "type") != "BPE" && !member(model, "type").is_null())
    refuse("model.type", member(model, "type"), "\"BPE\"");
  for (const char* key : {"byte_fallback", "ignore_merges"})
    if (!is_false_or_absent(member(model, key)))
      refuse(fmt::format("model.{}", key).c_str(), member(model, key), "false");
  if (!member(model, "dropout").is_null())
    refuse("model.dropout", member(model, "dropout"), "null");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!is_empty_or_absent(member(model, key)))
      refuse(fmt::format("model.{}", key).c_str(), member(model, key), "\"\" or null");

  // ByteLevel's post-processor only adjusts offsets; a template would add tokens Hugging Face puts
  // around every text, which qwen3-prep does not.
  const json& post = member(root, "post_processor");
  if (!post.is_null() && member(post, "type") != "ByteLevel")
    refuse("post_processor", post, "null or ByteLevel");
}

std::vector<std::pair<std::string, std::string>> merges_from_json(const json& list,
                                                                  const std::string& where) {
  QWEN3_CHECK(list.is_array(), "{}: model.merges must be a list", where);
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(list.size());
  for (const json& entry : list) {
    std::pair<std::string, std::string> merge;
    if (entry.is_string() && split_merge(entry.get<std::string>(), merge)) {
      merges.push_back(std::move(merge));
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      merges.emplace_back(entry[0].get<std::string>(), entry[1].get<std::string>());
    } else {
      throw_error(fmt::format("{}: merge {} is {}, expected \"left right\" or [left, right]", where,
                              merges.size() + 1, entry.dump()));
    }
  }
  return merges;
}

std::vector<AddedToken> added_tokens_from_json(const json& list, const std::string& where) {
  std::vector<AddedToken> added;
  if (list.is_null()) return added;
  QWEN3_CHECK(list.is_array(), "{}: added_tokens must be a list", where);
  for (const json& entry : list) {
    const json& content = member(entry, "content");
    const json& id = member(entry, "id");
    QWEN3_CHECK(content.is_string() && id.is_number_unsigned(),
                "{}: added token {} needs a string 'content' and an unsigned 'id'", where,
                entry.dump());
    for (const char* flag : {"lstrip", "rstrip", "single_word", "normalized"})
      QWEN3_CHECK(is_false_or_absent(member(entry, flag)),
                  "{}: added token '{}' sets '{}', which this tokenizer does not implement", where,
                  content.get<std::string>(), flag);
    added.push_back({content.get<std::string>(), id.get<uint32_t>()});
  }
  return added;
}

// The first difference between what vocab.json + merges.txt and tokenizer.json say, or "".
std::string first_difference(TokenizerDefinition a, TokenizerDefinition b) {
  std::sort(a.vocab.begin(), a.vocab.end());
  std::sort(b.vocab.begin(), b.vocab.end());
  if (a.vocab.size() != b.vocab.size())
    return fmt::format("{} vocabulary tokens against {}", a.vocab.size(), b.vocab.size());
  for (size_t i = 0; i < a.vocab.size(); ++i)
    if (a.vocab[i] != b.vocab[i])
      return fmt::format("token '{}' has id {} against '{}' with id {}", a.vocab[i].first,
                         a.vocab[i].second, b.vocab[i].first, b.vocab[i].second);
  if (a.merges.size() != b.merges.size())
    return fmt::format("{} merges against {}", a.merges.size(), b.merges.size());
  for (size_t i = 0; i < a.merges.size(); ++i)
    if (a.merges[i] != b.merges[i])
      return fmt::format("merge {} is '{} {}' against '{} {}'", i + 1, a.merges[i].first,
                         a.merges[i].second, b.merges[i].first, b.merges[i].second);
  return "";
}

}  // namespace

TokenizerFiles find_tokenizer_files(const std::string& directory) {
  TokenizerFiles files;
  if (is_file(directory + "/tokenizer.json")) {
    files.tokenizer_json = directory + "/tokenizer.json";
  } else if (is_file(directory + "/vocab.json") && is_file(directory + "/merges.txt")) {
    files.vocab_json = directory + "/vocab.json";
    files.merges_txt = directory + "/merges.txt";
  } else {
    throw_error(
        fmt::format("tokenizer directory '{}' holds neither tokenizer.json nor vocab.json "
                    "with merges.txt",
                    directory));
  }
  return files;
}

const std::vector<AddedToken>& qwen3_added_tokens() {
  static const std::vector<AddedToken> tokens = [] {
    const char* const contents[] = {"<|endoftext|>",
                                    "<|im_start|>",
                                    "<|im_end|>",
                                    "<|object_ref_start|>",
                                    "<|object_ref_end|>",
                                    "<|box_start|>",
                                    "<|box_end|>",
                                    "<|quad_start|>",
                                    "<|quad_end|>",
                                    "<|vision_start|>",
                                    "<|vision_end|>",
                                    "<|vision_pad|>",
                                    "<|image_pad|>",
                                    "<|video_pad|>",
                                    "<tool_call>",
                                    "</tool_call>",
                                    "<|fim_prefix|>",
                                    "<|fim_middle|>",
                                    "<|fim_suffix|>",
                                    "<|fim_pad|>",
                                    "<|repo_name|>",
                                    "<|file_sep|>",
                                    "<tool_response>",
                                    "</tool_response>",
                                    "<think>",
                                    "</think>"};
    std::vector<AddedToken> list;
    uint32_t id = 151643;
    for (const char* content : contents)
      list.push_back({content, id++});
    return list;
  }();
  return tokens;
}

TokenizerDefinition read_tokenizer_files(const TokenizerFiles& files) {
  QWEN3_CHECK(!files.empty(),
              "no tokenizer files given (vocab.json and merges.txt, or "
              "tokenizer.json)");
  QWEN3_CHECK(files.vocab_json.empty() == files.merges_txt.empty(),
              "vocab.json and merges.txt go together; got only {}",
              files.vocab_json.empty() ? "merges.txt '" + files.merges_txt + "'"
                                       : "vocab.json '" + files.vocab_json + "'");
  TokenizerDefinition from_vocab;
  if (!files.vocab_json.empty()) {
    from_vocab.source =
        fmt::format("vocab.json '{}' with merges.txt '{}'", files.vocab_json, files.merges_txt);
    from_vocab.vocab = vocab_from_json(parse_json_file(files.vocab_json, "vocab.json"),
                                       fmt::format("vocab.json '{}'", files.vocab_json));
    from_vocab.merges = read_merges_txt(files.merges_txt);
  }
  if (files.tokenizer_json.empty()) {
    // vocab.json lacks the added tokens; they are Qwen3's, whose ids follow its vocabulary.
    const uint32_t first_added = qwen3_added_tokens().front().id;
    for (const auto& [token, id] : from_vocab.vocab)
      QWEN3_CHECK(id < first_added,
                  "vocab.json '{}' has token '{}' with id {}, where Qwen3's added tokens start "
                  "({}); give this tokenizer's tokenizer.json for its added tokens",
                  files.vocab_json, token, id, first_added);
    from_vocab.added_tokens = qwen3_added_tokens();
    return from_vocab;
  }

  const std::string where = fmt::format("tokenizer.json '{}'", files.tokenizer_json);
  const json root = parse_json_file(files.tokenizer_json, "tokenizer.json");
  check_qwen2_pipeline(root, where);
  TokenizerDefinition definition;
  definition.source = where;
  definition.vocab =
      vocab_from_json(member(member(root, "model"), "vocab"), where + " model.vocab");
  definition.merges = merges_from_json(member(member(root, "model"), "merges"), where);
  definition.added_tokens = added_tokens_from_json(member(root, "added_tokens"), where);
  if (!files.vocab_json.empty()) {
    const std::string difference = first_difference(from_vocab, definition);
    QWEN3_CHECK(difference.empty(), "{} and {} disagree: {}", from_vocab.source, where, difference);
  }
  return definition;
}

}  // namespace qwen3
