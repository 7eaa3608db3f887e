#pragma once
// Options declared once: key, type, default (or required) and help, next to the struct member they
// fill. A schema reads one YAML mapping into a typed struct and rejects, naming file, line and key:
// unknown keys (suggesting the closest known one), missing required keys, wrong types and empty
// values. Cross-field rules are checked afterwards by the config's own validate(), which uses the
// recorded locations to point at the offending line.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "core/util/error.h"

namespace qwen3 {

struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
  std::string str() const;  // "file:7:3", or "file" when the line is unknown
};

// dotted key path -> where its value was written (and a mapping's path -> where it starts)
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
// A list of scalars: ["norm", "*.bias"].
std::vector<std::string> parse_string_list(const YAML::Node& node, const std::string& key,
                                           const SourceLocation& where);

// The shortest text that reads back to the same double: 0.0003, not 0.00029999999999999997.
std::string format_double(double value);
// Values as messages and dumps write them: integers in full, doubles as format_double.
template <class V>
std::string format_value(V value) {
  if constexpr (std::is_floating_point_v<V>)
    return format_double(value);
  else
    return std::to_string(value);
}
// "a, b, c"
std::string join_text(const std::vector<std::string>& items);

// Reports `message` about the key at dotted `path`, at the line where that key was written, else
// where the nearest enclosing mapping starts ("stages.1.seq_len" falls back to "stages.1", then
// "stages", then the document): cross-field rules blame keys this way.
[[noreturn]] void blame_key(const KeyLocations& at, const std::string& path,
                            const std::string& message);

// Value checks to attach to a declaration with OptionSchema::check, in the messages the run file's
// errors use. Each returns "" for a good value, else what is wrong.
template <class V>
std::function<std::string(const V&)> must_be_positive() {
  return [](const V& v) {
    return v > V{} && !(v != v) && v - v == V{} ? std::string()
                                                : "must be positive, got " + format_value(v);
  };
}
template <class V>
std::function<std::string(const V&)> must_not_be_negative(const std::string& note = "") {
  return [note](const V& v) { return v >= V{} ? std::string() : "must not be negative" + note; };
}
template <class V>
std::function<std::string(const V&)> must_be_at_least(V low) {
  return [low](const V& v) {
    return v >= low ? std::string() : "must be at least " + format_value(low);
  };
}
std::function<std::string(const std::string&)> must_be_one_of(std::vector<std::string> choices);

// Options declared once, bound to the typed struct they fill: key, type, default (the struct's own
// member initialiser, or given) or required, help, and checks of the value. A schema reads a YAML
// mapping into the struct, rejecting with file, line and dotted key unknown keys (with the closest
// known one), missing required keys, wrong types, empty values and values its checks refuse; it
// writes the struct back as YAML in declaration order (`--dump-config`) and lists itself as help.
// Nested mappings (`section`) and lists of mappings (`list`) are schemas of their own. Cross-field
// rules run afterwards, in the config's own resolving code, blaming keys with blame_key.
template <class Config>
class OptionSchema {
 public:
  // `what` names the mapping in messages: "stage".
  explicit OptionSchema(std::string what) : what_(std::move(what)) {}

  template <class V>
  OptionSchema& required(const char* key, V Config::*member, const char* help) {
    return add<V>(key, by_member(member), true, V{}, help);
  }
  // The default is the struct's member initialiser.
  template <class V>
  OptionSchema& optional(const char* key, V Config::*member, const char* help) {
    return add<V>(key, by_member(member), false, Config{}.*member, help);
  }
  template <class V>
  OptionSchema& optional(const char* key, V Config::*member, V default_value, const char* help) {
    return add<V>(key, by_member(member), false, default_value, help);
  }
  // A member of a member: `get` returns a reference into the config, e.g.
  // [](OptimizerConfig& c) -> double& { return c.schedule.lr; }. Default: the struct's.
  template <class Get>
  OptionSchema& optional_at(const char* key, Get get, const char* help) {
    using V = std::remove_reference_t<decltype(get(std::declval<Config&>()))>;
    Config defaults{};
    const V default_value = get(defaults);
    return add<V>(key, std::function<V&(Config&)>(get), false, default_value, help);
  }
  // A value written as one of a few names (an enum): `parse` throws qwen3::Error for other text,
  // `name` gives a value's text. Default: the struct's.
  template <class Get, class Parse, class Name>
  OptionSchema& named(const char* key, Get get, Parse parse, Name name, const char* help) {
    using V = std::remove_reference_t<decltype(get(std::declval<Config&>()))>;
    Config defaults{};
    const V default_value = get(defaults);
    Option o = base(key, false, help);
    o.type = "name";
    o.default_text = "'" + std::string(name(default_value)) + "'";
    const std::function<V&(Config&)> at(get);
    o.assign = [at, parse](Config& c, const YAML::Node& n, const SourceLocation& w,
                           const std::string& path) {
      const std::string text = parse_string(n, path, w);
      try {
        at(c) = parse(text);
      } catch (const std::exception& e) {
        throw_config_error(w, path, without_rank_prefix(e.what()));
      }
    };
    o.set_default = [at, default_value](Config& c) { at(c) = default_value; };
    o.emit = [at, name](const Config& c, YAML::Emitter& e) {
      e << std::string(name(at(const_cast<Config&>(c))));
    };
    options_.push_back(std::move(o));
    return *this;
  }
  // A nested mapping read by its own schema; absent, every key takes its default.
  template <class Sub>
  OptionSchema& section(const char* key, Sub Config::*member, const OptionSchema<Sub>& schema,
                        const char* help) {
    Option o = base(key, false, help);
    o.type = "mapping";
    o.default_text = "all defaults";
    o.nested = true;
    o.read_nested = [member, &schema](Config& c, const YAML::Node& n, const std::string& file,
                                      const std::string& path, KeyLocations& at,
                                      const OverrideLocations* overrides) {
      schema.read(n, file, c.*member, at, path + ".", overrides);
    };
    o.set_default = [member, &schema](Config& c) {
      KeyLocations ignored;
      schema.read(YAML::Node(YAML::NodeType::Map), "", c.*member, ignored);
    };
    o.emit = [member, &schema](const Config& c, YAML::Emitter& e) { schema.emit(c.*member, e); };
    options_.push_back(std::move(o));
    return *this;
  }
  // A non-empty list of mappings, each read by `schema`; optional lists may be absent (empty).
  template <class Sub>
  OptionSchema& list(const char* key, std::vector<Sub> Config::*member,
                     const OptionSchema<Sub>& schema, bool is_required, const char* help) {
    Option o = base(key, is_required, help);
    o.type = "list";
    o.default_text = "none";
    o.nested = true;
    o.read_nested = [member, &schema](Config& c, const YAML::Node& n, const std::string& file,
                                      const std::string& path, KeyLocations& at,
                                      const OverrideLocations* overrides) {
      if (!n.IsSequence() || n.size() == 0) {
        auto it = overrides ? overrides->find(path) : OverrideLocations::const_iterator{};
        throw_config_error(overrides && it != overrides->end() ? SourceLocation{it->second, 0, 0}
                                                               : location_of(n, file),
                           path, "must be a non-empty list");
      }
      std::vector<Sub>& out = c.*member;
      out.assign(n.size(), Sub{});
      for (size_t i = 0; i < n.size(); ++i)
        schema.read(n[i], file, out[i], at, path + "." + std::to_string(i) + ".", overrides);
    };
    o.set_default = [member](Config& c) { (c.*member).clear(); };
    o.emit = [member, &schema](const Config& c, YAML::Emitter& e) {
      e << YAML::BeginSeq;
      for (const Sub& entry : c.*member) {
        // Entries of scalars alone (data sources) on one line each.
        if (schema.flat()) e << YAML::Flow;
        schema.emit(entry, e);
      }
      e << YAML::EndSeq;
    };
    o.omit = [member](const Config& c) { return (c.*member).empty(); };
    options_.push_back(std::move(o));
    return *this;
  }

  // A check of the value of the option declared last, run when the file or an override gives it.
  template <class V>
  OptionSchema& check(std::function<std::string(const V&)> problem) {
    Option& o = options_.back();
    if (!o.value_type || *o.value_type != typeid(V))
      throw std::logic_error("OptionSchema::check: option '" + o.key +
                             "' is not of the checked type");
    const std::function<const void*(const Config&)> address = o.address;
    o.checks.push_back([address, problem](const Config& c) {
      return problem(*static_cast<const V*>(address(c)));
    });
    return *this;
  }

  // Fills `out` from `node`. `at` gains where each key was written, by dotted path, and where each
  // mapping starts: `prefix` is the path of `node` ("stages.1.optimizer."), and `overrides` says
  // which keys came from the command line.
  void read(const YAML::Node& node, const std::string& file, Config& out, KeyLocations& at,
            const std::string& prefix = "", const OverrideLocations* overrides = nullptr) const {
    const SourceLocation top = location_of(node, file);
    const std::string top_name =
        prefix.empty() ? "(top level)" : prefix.substr(0, prefix.size() - 1);
    if (!node.IsMap()) throw_config_error(top, top_name, "must be a mapping of " + what_ + " keys");
    at.emplace(prefix.empty() ? "" : top_name, top);
    std::vector<std::string> given;
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
      at[path] = where;
      given.push_back(key);
      if (option->nested) {
        option->read_nested(out, item.second, file, path, at, overrides);
        continue;
      }
      option->assign(out, item.second, where, path);
      for (const auto& problem_of : option->checks) {
        const std::string problem = problem_of(out);
        if (!problem.empty()) throw_config_error(where, path, problem);
      }
    }
    for (const Option& option : options_) {
      if (std::find(given.begin(), given.end(), option.key) != given.end()) continue;
      if (option.is_required)
        throw_config_error(top, prefix + option.key,
                           "is required in the " + what_ + " but missing");
      option.set_default(out);
    }
  }

  // The config as a YAML mapping of every option, in declaration order (empty optional lists left
  // out), which read() takes back to the same values.
  void emit(const Config& config, YAML::Emitter& out) const {
    out << YAML::BeginMap;
    for (const Option& o : options_) {
      if (o.omit && o.omit(config)) continue;
      out << YAML::Key << o.key << YAML::Value;
      o.emit(config, out);
    }
    out << YAML::EndMap;
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

  // Whether every option is a scalar (no sections or lists).
  bool flat() const {
    return std::none_of(options_.begin(), options_.end(), [](const Option& o) { return o.nested; });
  }

 private:
  struct Option {
    std::string key, type, default_text, help;
    bool is_required = false;
    bool nested = false;  // a section or a list, read by its own schema
    // (config, value, where it was written, its dotted path for messages)
    std::function<void(Config&, const YAML::Node&, const SourceLocation&, const std::string&)>
        assign;
    std::function<void(Config&, const YAML::Node&, const std::string&, const std::string&,
                       KeyLocations&, const OverrideLocations*)>
        read_nested;
    std::function<void(Config&)> set_default;
    std::function<void(const Config&, YAML::Emitter&)> emit;
    std::function<bool(const Config&)> omit;  // leave out of the dump
    // The value's address and type, for checks.
    std::function<const void*(const Config&)> address;
    const std::type_info* value_type = nullptr;
    std::vector<std::function<std::string(const Config&)>> checks;
  };

  template <class V>
  static std::function<V&(Config&)> by_member(V Config::*member) {
    return [member](Config& c) -> V& { return c.*member; };
  }

  Option base(const char* key, bool is_required, const char* help) const {
    Option o;
    o.key = key;
    o.help = help;
    o.is_required = is_required;
    return o;
  }

  template <class V>
  OptionSchema& add(const char* key, std::function<V&(Config&)> at, bool is_required,
                    V default_value, const char* help) {
    Option o = base(key, is_required, help);
    o.set_default = [at, default_value](Config& c) { at(c) = default_value; };
    o.address = [at](const Config& c) -> const void* { return &at(const_cast<Config&>(c)); };
    o.value_type = &typeid(V);
    o.emit = [at](const Config& c, YAML::Emitter& e) {
      const V& v = at(const_cast<Config&>(c));
      if constexpr (std::is_same_v<V, double>)
        e << format_value(v);  // the shortest text that reads back to the same double
      else if constexpr (std::is_same_v<V, std::vector<std::string>>)
        e << YAML::Flow << v;
      else if constexpr (std::is_same_v<V, YAML::Node>)
        e << v;
      else
        e << v;
    };
    if constexpr (std::is_same_v<V, int64_t> || std::is_same_v<V, int> ||
                  std::is_same_v<V, uint64_t>) {
      o.type = "integer";
      o.default_text = std::to_string(default_value);
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation& w,
                      const std::string& path) {
        const int64_t v = parse_int(n, path, w);
        if constexpr (std::is_same_v<V, uint64_t>) {
          if (v < 0) throw_config_error(w, path, "must not be negative");
        } else if constexpr (std::is_same_v<V, int>) {
          if (v < INT32_MIN || v > INT32_MAX)
            throw_config_error(w, path, "must fit in 32 bits, got " + std::to_string(v));
        }
        at(c) = static_cast<V>(v);
      };
    } else if constexpr (std::is_same_v<V, double>) {
      o.type = "number";
      o.default_text = format_value(default_value);
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation& w,
                      const std::string& path) { at(c) = parse_double(n, path, w); };
    } else if constexpr (std::is_same_v<V, bool>) {
      o.type = "boolean";
      o.default_text = default_value ? "true" : "false";
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation& w,
                      const std::string& path) { at(c) = parse_bool(n, path, w); };
    } else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
      o.type = "list of strings";
      o.default_text = "[" + join_text(default_value) + "]";
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation& w,
                      const std::string& path) { at(c) = parse_string_list(n, path, w); };
    } else if constexpr (std::is_same_v<V, YAML::Node>) {
      // A nested mapping or list, kept as YAML for the config's own reader.
      o.type = "mapping or list";
      o.default_text = "none";
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation&, const std::string&) {
        at(c) = n;
      };
    } else {
      static_assert(std::is_same_v<V, std::string>,
                    "options are integers, numbers, booleans, strings, lists of strings or nested "
                    "YAML");
      o.type = "string";
      o.default_text = "'" + default_value + "'";
      o.assign = [at](Config& c, const YAML::Node& n, const SourceLocation& w,
                      const std::string& path) { at(c) = parse_string(n, path, w); };
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
