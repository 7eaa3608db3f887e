#pragma once
// Options declared once: key, type, default (or required) and help, next to the struct member they
// fill. A schema reads one YAML mapping into a typed struct and rejects, naming file, line and key:
// unknown keys (suggesting the closest known one), missing required keys, wrong types and empty
// values. Cross-field rules are checked afterwards by the config's own validate(), which uses the
// recorded locations to point at the offending line.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace qwen3 {

struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
  std::string str() const;  // "file:7:3", or "file" when the line is unknown
};

// key -> where its value was written
using KeyLocations = std::map<std::string, SourceLocation>;

// Values set on the command line (`--set stages.1.optimizer.lr=1e-4`), by dotted key path, with
// the text to blame in errors ("--set stages.1.optimizer.lr=1e-4"). A schema reading a mapping at
// `prefix` reports an overridden key at this location instead of the file's.
using OverrideLocations = std::map<std::string, std::string>;

// Throws qwen3::Error "file:line:col: key 'key': message".
[[noreturn]] void throw_config_error(const SourceLocation& where, const std::string& key,
                                     const std::string& message);

// Loads a YAML file, turning I/O and syntax errors into messages that name the file and line.
YAML::Node load_yaml_file(const std::string& path);
YAML::Node load_yaml_text(const std::string& text, const std::string& source_name);

SourceLocation location_of(const YAML::Node& node, const std::string& file);

// The known key closest to `unknown` by edit distance, or "" if none is close.
std::string closest_key(const std::string& unknown, const std::vector<std::string>& known);

// Scalar conversions with the strictness a config wants: "10.5" is not an integer, "yes" is not a
// number. `key` and `where` are for the error.
int64_t parse_int(const YAML::Node& node, const std::string& key, const SourceLocation& where);
double parse_double(const YAML::Node& node, const std::string& key, const SourceLocation& where);
bool parse_bool(const YAML::Node& node, const std::string& key, const SourceLocation& where);
std::string parse_string(const YAML::Node& node, const std::string& key,
                         const SourceLocation& where);

template <class Config>
class OptionSchema {
 public:
  // `what` names the mapping in messages: "model config".
  explicit OptionSchema(std::string what) : what_(std::move(what)) {}

  template <class V>
  OptionSchema& required(const char* key, V Config::*member, const char* help) {
    return add(key, member, true, V{}, help);
  }
  template <class V>
  OptionSchema& optional(const char* key, V Config::*member, V default_value, const char* help) {
    return add(key, member, false, default_value, help);
  }

  // Fills `out` from `node`; returns where each key was written. Nested mappings name their keys
  // by dotted path in errors: `prefix` is the path of `node` ("stages.1.optimizer."), and
  // `overrides` says which keys came from the command line.
  KeyLocations read(const YAML::Node& node, const std::string& file, Config& out,
                    const std::string& prefix = "",
                    const OverrideLocations* overrides = nullptr) const {
    const SourceLocation top = location_of(node, file);
    const std::string top_name =
        prefix.empty() ? "(top level)" : prefix.substr(0, prefix.size() - 1);
    if (!node.IsMap()) throw_config_error(top, top_name, "must be a mapping of " + what_ + " keys");
    KeyLocations locations;
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      const std::string path = prefix + key;
      SourceLocation where = location_of(item.first, file);
      if (overrides) {
        auto it = overrides->find(path);
        if (it != overrides->end()) where = SourceLocation{it->second, 0, 0};
      }
      const Option* option = find(key);
      if (!option) {
        std::string message = "unknown " + what_ + " key";
        const std::string hint = closest_key(key, keys());
        if (!hint.empty()) message += " (did you mean '" + prefix + hint + "'?)";
        throw_config_error(where, path, message);
      }
      if (!item.second.IsDefined() || item.second.IsNull())
        throw_config_error(where, path, "has no value");
      option->assign(out, item.second, where, path);
      locations[key] = where;
    }
    for (const Option& option : options_) {
      if (locations.count(option.key)) continue;
      if (option.is_required)
        throw_config_error(top, prefix + option.key,
                           "is required in the " + what_ + " but missing");
      option.set_default(out);
    }
    return locations;
  }

  // One line per option: key, type, default, help.
  std::string help() const {
    std::string out;
    for (const Option& o : options_)
      out += "  " + o.key + " (" + o.type +
             (o.is_required ? ", required" : ", default " + o.default_text) + "): " + o.help + "\n";
    return out;
  }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const Option& o : options_)
      out.push_back(o.key);
    return out;
  }

 private:
  struct Option {
    std::string key, type, default_text, help;
    bool is_required = false;
    // (config, value, where it was written, its dotted path for messages)
    std::function<void(Config&, const YAML::Node&, const SourceLocation&, const std::string&)>
        assign;
    std::function<void(Config&)> set_default;
  };

  template <class V>
  OptionSchema& add(const char* key, V Config::*member, bool is_required, V default_value,
                    const char* help) {
    Option o;
    o.key = key;
    o.help = help;
    o.is_required = is_required;
    o.set_default = [member, default_value](Config& c) { c.*member = default_value; };
    if constexpr (std::is_same_v<V, int64_t>) {
      o.type = "integer";
      o.default_text = std::to_string(default_value);
      o.assign = [member](Config& c, const YAML::Node& n, const SourceLocation& w,
                          const std::string& path) { c.*member = parse_int(n, path, w); };
    } else if constexpr (std::is_same_v<V, double>) {
      o.type = "number";
      o.default_text = std::to_string(default_value);
      o.assign = [member](Config& c, const YAML::Node& n, const SourceLocation& w,
                          const std::string& path) { c.*member = parse_double(n, path, w); };
    } else if constexpr (std::is_same_v<V, bool>) {
      o.type = "boolean";
      o.default_text = default_value ? "true" : "false";
      o.assign = [member](Config& c, const YAML::Node& n, const SourceLocation& w,
                          const std::string& path) { c.*member = parse_bool(n, path, w); };
    } else if constexpr (std::is_same_v<V, YAML::Node>) {
      // A nested mapping or list, kept as YAML for the config's own reader.
      o.type = "mapping or list";
      o.default_text = "none";
      o.assign = [member](Config& c, const YAML::Node& n, const SourceLocation&,
                          const std::string&) { c.*member = n; };
    } else {
      static_assert(std::is_same_v<V, std::string>,
                    "options are integers, numbers, booleans, strings or nested YAML");
      o.type = "string";
      o.default_text = "'" + default_value + "'";
      o.assign = [member](Config& c, const YAML::Node& n, const SourceLocation& w,
                          const std::string& path) { c.*member = parse_string(n, path, w); };
    }
    options_.push_back(std::move(o));
    return *this;
  }

  const Option* find(const std::string& key) const {
    for (const Option& o : options_)
      if (o.key == key) return &o;
    return nullptr;
  }

  std::string what_;
  std::vector<Option> options_;
};

}  // namespace qwen3
