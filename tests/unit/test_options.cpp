// The declared-once option schema (core/util/options.h) on a small config of its own: defaults from
// the struct, checks attached to declarations, nested sections and lists, names for enums, the
// dump that reads back to the same values, and where errors are blamed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/util/error.h"
#include "core/util/options.h"

namespace qwen3 {
namespace {

enum class Colour { Red, Green };
Colour parse_colour(const std::string& text) {
  if (text == "red") return Colour::Red;
  if (text == "green") return Colour::Green;
  throw_error("unknown colour '" + text + "' (red or green)");
}
const char* colour_name(Colour c) {
  return c == Colour::Red ? "red" : "green";
}

struct Inner {
  double rate = 0.5;
  Colour colour = Colour::Green;
};
struct Item {
  std::string name;
  int64_t size = 3;
};
struct Outer {
  std::string title = "untitled";
  int64_t count = 2;
  Inner inner;
  std::vector<Item> items;
  std::vector<std::string> tags = {"a", "b"};
};

const OptionSchema<Inner>& inner_schema() {
  static const OptionSchema<Inner> s = [] {
    OptionSchema<Inner> o("inner");
    o.optional("rate", &Inner::rate, "a rate")
        .check(must_be_positive<double>())
        .named(
            "colour", [](Inner& c) -> Colour& { return c.colour; }, parse_colour, colour_name,
            "a colour");
    return o;
  }();
  return s;
}

const OptionSchema<Item>& item_schema() {
  static const OptionSchema<Item> s = [] {
    OptionSchema<Item> o("item");
    o.required("name", &Item::name, "its name").optional("size", &Item::size, "its size");
    return o;
  }();
  return s;
}

const OptionSchema<Outer>& outer_schema() {
  static const OptionSchema<Outer> s = [] {
    OptionSchema<Outer> o("outer");
    o.optional("title", &Outer::title, "a title")
        .check(must_be_one_of({"untitled", "first", "second"}))
        .optional("count", &Outer::count, "how many")
        .check(must_be_at_least<int64_t>(1))
        .section("inner", &Outer::inner, inner_schema(), "nested")
        .list("items", &Outer::items, item_schema(), true, "the items")
        .optional("tags", &Outer::tags, "labels");
    return o;
  }();
  return s;
}

Outer read(const std::string& text, KeyLocations* at_out = nullptr) {
  Outer out;
  KeyLocations at;
  outer_schema().read(load_yaml_text(text, "t.yaml"), "t.yaml", out, at);
  if (at_out) *at_out = at;
  return out;
}

std::string error_of(const std::string& text) {
  try {
    read(text);
  } catch (const Error& e) {
    return without_rank_prefix(e.what());
  }
  return "(no error)";
}

TEST(OptionSchema, DefaultsComeFromTheStructAndNestedValuesAreRead) {
  const Outer o = read("items: [{name: x}, {name: y, size: 9}]\ninner: {colour: red}\n");
  EXPECT_EQ(o.title, "untitled");
  EXPECT_EQ(o.count, 2);
  EXPECT_DOUBLE_EQ(o.inner.rate, 0.5);
  EXPECT_EQ(o.inner.colour, Colour::Red);
  ASSERT_EQ(o.items.size(), 2u);
  EXPECT_EQ(o.items[1].name, "y");
  EXPECT_EQ(o.items[0].size, 3);
  EXPECT_EQ(o.items[1].size, 9);
  EXPECT_EQ(o.tags, (std::vector<std::string>{"a", "b"}));
}

TEST(OptionSchema, ChecksAndTypesAreBlamedOnTheKeysLine) {
  EXPECT_EQ(error_of("items: [{name: x}]\ncount: 0\n"),
            "t.yaml:2:1: key 'count' must be at least 1");
  EXPECT_EQ(error_of("items: [{name: x}]\ntitle: third\n"),
            "t.yaml:2:1: key 'title' 'third' is not one of untitled, first, second");
  EXPECT_EQ(error_of("items: [{name: x}]\ninner:\n  rate: -2\n"),
            "t.yaml:3:3: key 'inner.rate' must be positive, got -2");
  EXPECT_EQ(error_of("items: [{name: x}]\ninner:\n  colour: blue\n"),
            "t.yaml:3:3: key 'inner.colour' unknown colour 'blue' (red or green)");
  EXPECT_EQ(error_of("items: [{name: x, size: big}]\n"),
            "t.yaml:1:19: key 'items.0.size' must be an integer, got 'big'");
  EXPECT_EQ(error_of("items: []\n"), "t.yaml:1:8: key 'items' must be a non-empty list");
  EXPECT_EQ(error_of("items: [{size: 1}]\n"),
            "t.yaml:1:9: key 'items.0.name' is required in the item but missing");
  EXPECT_EQ(error_of("items: [{name: x}]\ntag: [c]\n"),
            "t.yaml:2:1: key 'tag' unknown outer key (did you mean 'tags'?)");
  EXPECT_EQ(error_of("items: [{name: x}]\ntags: {a: 1}\n"),
            "t.yaml:2:1: key 'tags' must be a list of strings");
}

TEST(OptionSchema, DumpReadsBackToTheSameValues) {
  const Outer o = read(
      "title: first\ncount: 7\ninner: {rate: 0.1, colour: red}\nitems: [{name: x, size: 4}]\n"
      "tags: [p, q]\n");
  YAML::Emitter e;
  outer_schema().emit(o, e);
  const std::string dumped = e.c_str();
  EXPECT_NE(dumped.find("rate: 0.1\n"), std::string::npos) << dumped;  // shortest double text
  EXPECT_NE(dumped.find("colour: red"), std::string::npos) << dumped;
  const Outer again = read(dumped);
  EXPECT_EQ(again.title, "first");
  EXPECT_EQ(again.count, 7);
  EXPECT_DOUBLE_EQ(again.inner.rate, 0.1);
  EXPECT_EQ(again.inner.colour, Colour::Red);
  ASSERT_EQ(again.items.size(), 1u);
  EXPECT_EQ(again.items[0].size, 4);
  EXPECT_EQ(again.tags, (std::vector<std::string>{"p", "q"}));
}

TEST(OptionSchema, BlameFallsBackToTheEnclosingMapping) {
  KeyLocations at;
  read("items:\n  - name: x\n    size: 2\n  - name: y\n", &at);
  const auto blamed = [&](const std::string& path) {
    try {
      blame_key(at, path, "is wrong");
    } catch (const Error& e) {
      return without_rank_prefix(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(blamed("items.0.size"), "t.yaml:3:5: key 'items.0.size' is wrong");  // written
  EXPECT_EQ(blamed("items.1.size"), "t.yaml:4:5: key 'items.1.size' is wrong");  // its entry
  EXPECT_EQ(blamed("count"), "t.yaml:1:1: key 'count' is wrong");                // the document
}

TEST(OptionSchema, HelpListsTypeDefaultAndHelp) {
  const std::string help = outer_schema().help();
  EXPECT_NE(help.find("  count (integer, default 2): how many\n"), std::string::npos) << help;
  EXPECT_NE(help.find("  items (list, required): the items\n"), std::string::npos) << help;
  EXPECT_NE(help.find("  tags (list of strings, default [a, b]): labels\n"), std::string::npos)
      << help;
  EXPECT_NE(inner_schema().help().find("  colour (name, default 'green'): a colour\n"),
            std::string::npos);
}

}  // namespace
}  // namespace qwen3
