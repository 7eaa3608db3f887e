#include "core/util/options.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/util/error.h"

namespace qwen3 {

std::string SourceLocation::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

void throw_config_error(const SourceLocation& where, const std::string& key,
                        const std::string& message) {
  throw_error(where.str() + ": key '" + key + "' " + message);
}

SourceLocation location_of(const YAML::Node& node, const std::string& file) {
  SourceLocation where{file, 0, 0};
  const YAML::Mark mark = node.Mark();
  if (mark.line >= 0) {  // yaml-cpp marks are 0-based, and -1 for nodes built in code
    where.line = mark.line + 1;
    where.column = mark.column + 1;
  }
  return where;
}

YAML::Node load_yaml_text(const std::string& text, const std::string& source_name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw_error(fmt::format("{}:{}:{}: YAML syntax error: {}", source_name, e.mark.line + 1,
                            e.mark.column + 1, e.msg));
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  std::ifstream in(path);
  QWEN3_CHECK(in.good(), "cannot open '{}': {}", path, std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return load_yaml_text(text.str(), path);
}

std::string closest_key(const std::string& unknown, const std::vector<std::string>& known) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
      row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  // A third of the key's length in edits: catches typos and a swapped word, not unrelated keys.
  size_t best_distance = std::max<size_t>(2, unknown.size() / 3) + 1;
  for (const std::string& candidate : known) {
    const size_t d = distance(unknown, candidate);
    if (d < best_distance) best_distance = d, best = candidate;
  }
  return best;
}

namespace {

std::string scalar_text(const YAML::Node& node, const std::string& key, const std::string& type,
                        const SourceLocation& where) {
  if (!node.IsScalar())
    throw_config_error(where, key, "must be " + type + ", not a list or mapping");
  return node.Scalar();
}

}  // namespace

int64_t parse_int(const YAML::Node& node, const std::string& key, const SourceLocation& where) {
  const std::string text = scalar_text(node, key, "an integer", where);
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != 0 && used == text.size()) return value;
  // Token budgets read better as 100e9: accept a number in exponent notation when it is a whole
  // number that fits; "10.5" is still refused.
  double real = 0;
  try {
    real = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || real != std::floor(real) || std::fabs(real) > 9.0e18)
    throw_config_error(where, key, "must be an integer, got '" + text + "'");
  return static_cast<int64_t>(real);
}

double parse_double(const YAML::Node& node, const std::string& key, const SourceLocation& where) {
  const std::string text = scalar_text(node, key, "a number", where);
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw_config_error(where, key, "must be a number, got '" + text + "'");
  return value;
}

bool parse_bool(const YAML::Node& node, const std::string& key, const SourceLocation& where) {
  const std::string text = scalar_text(node, key, "true or false", where);
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  throw_config_error(where, key, "must be true or false, got '" + text + "'");
}

std::string parse_string(const YAML::Node& node, const std::string& key,
                         const SourceLocation& where) {
  return scalar_text(node, key, "a string", where);
}

std::vector<std::string> parse_string_list(const YAML::Node& node, const std::string& key,
                                           const SourceLocation& where) {
  if (!node.IsSequence()) throw_config_error(where, key, "must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) throw_config_error(where, key, "entries must be strings");
    out.push_back(item.Scalar());
  }
  return out;
}

std::string format_double(double value) {
  return fmt::format("{}", value);
}

std::string join_text(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items)
    out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::function<std::string(const std::string&)> must_be_one_of(std::vector<std::string> choices) {
  return [choices](const std::string& v) {
    return std::find(choices.begin(), choices.end(), v) != choices.end()
               ? std::string()
               : "'" + v + "' is not one of " + join_text(choices);
  };
}

void blame_key(const KeyLocations& at, const std::string& path, const std::string& message) {
  for (std::string scope = path;;) {
    auto it = at.find(scope);
    if (it != at.end()) throw_config_error(it->second, path, message);
    if (scope.empty()) throw_config_error(SourceLocation{}, path, message);
    const size_t dot = scope.rfind('.');
    scope = dot == std::string::npos ? "" : scope.substr(0, dot);
  }
}

}  // namespace qwen3
