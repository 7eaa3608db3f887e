// The tokenizer (dataloader/tokenizer): UTF-8 checks and repair, NFC, the byte-level alphabet,
// BPE merges against a plain reference implementation (short and long words), added tokens, the
// files it reads and refuses; and Qwen3's known answers where its files are present.
// tests/python/test_tokenizer_vs_hf.py compares whole corpora with Hugging Face's tokenizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/util/error.h"
#include "core/util/rng.h"
#include "dataloader/tokenizer/byte_level.h"
#include "dataloader/tokenizer/tokenizer_files.h"
#include "dataloader/tokenizer/unicode.h"
#include "shard_test_util.h"
#include "tokenizer_test_util.h"

namespace qwen3 {
namespace {

// The message of the Error `f` throws, or a failure.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

Tokenizer tiny_tokenizer(const test::Merges& merges = test::small_merges()) {
  const std::string dir = test::fresh_dir();
  test::write_text_file(dir + "/tokenizer.json", test::tiny_tokenizer_json(merges));
  TokenizerFiles files;
  files.tokenizer_json = dir + "/tokenizer.json";
  return load_tokenizer(files);
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ASCII, long enough for the eight-byte path"),
            std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\x89"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("abcdefgh\xC0\x80"), 8u) << "overlong NUL";
  EXPECT_EQ(find_invalid_utf8("a\xED\xA0\x80"), 1u) << "a surrogate";
  EXPECT_EQ(find_invalid_utf8("ab\xF4\x90\x80\x80"), 2u) << "above U+10FFFF";
  EXPECT_EQ(find_invalid_utf8("abc\xE2\x82"), 3u) << "truncated at the end";
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u) << "a lone continuation byte";
  EXPECT_EQ(find_invalid_utf8(std::string_view("\0", 1)), std::string_view::npos);
}

TEST(Utf8, ReplacesEachMaximalSubpartLikePython) {
  // Expected values from Python: bytes.decode("utf-8", "replace").
  const std::string r = "\xEF\xBF\xBD";
  std::string out;
  EXPECT_EQ(replace_invalid_utf8("a\xE2\x82x", out), 1u);
  EXPECT_EQ(out, "a" + r + "x") << "a truncated sequence is one replacement";
  EXPECT_EQ(replace_invalid_utf8("\xF0\x80\x80", out), 3u);
  EXPECT_EQ(out, r + r + r) << "F0 80: 80 is not a valid second byte after F0";
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80z", out), 3u);
  EXPECT_EQ(out, r + r + r + "z");
  EXPECT_EQ(replace_invalid_utf8("\xF0\x9F\x8E", out), 1u);
  EXPECT_EQ(out, r);
  EXPECT_EQ(replace_invalid_utf8("\xFF\xFE ok \xC3\xA9", out), 2u);
  EXPECT_EQ(out, r + r + " ok \xC3\xA9");
  EXPECT_EQ(find_invalid_utf8(out), std::string_view::npos);
}

TEST(Nfc, ComposesWhatNeedsItAndLeavesTheRest) {
  NfcNormalizer nfc;
  const std::string ascii = "no change at all";
  EXPECT_EQ(nfc.normalize(ascii).data(), ascii.data()) << "ASCII text is returned as it is";
  EXPECT_EQ(std::string(nfc.normalize("e\xCC\x81t\xC3\xA9")), "\xC3\xA9t\xC3\xA9") << "e + U+0301";
  EXPECT_EQ(std::string(nfc.normalize("A\xCC\x8A!")), "\xC3\x85!") << "A + ring above";
  EXPECT_EQ(std::string(nfc.normalize("\xE1\x84\x80\xE1\x85\xA1")), "\xEA\xB0\x80")
      << "Hangul jamo compose";
  EXPECT_EQ(std::string(nfc.normalize("\xE2\x84\xAB")), "\xC3\x85") << "ANGSTROM SIGN";
  EXPECT_EQ(std::string(nfc.normalize("x\xEF\xAC\x81y")), "x\xEF\xAC\x81y")
      << "NFC keeps compatibility characters (the fi ligature)";
  EXPECT_EQ(std::string(nfc.normalize("\xE6\x97\xA5\xE6\x9C\xAC")), "\xE6\x97\xA5\xE6\x9C\xAC");
}

TEST(ByteLevel, IsGpt2sMap) {
  const ByteLevelAlphabet alphabet;
  EXPECT_EQ(alphabet.codepoint_of('A'), uint32_t{'A'});
  EXPECT_EQ(alphabet.codepoint_of(' '), 0x120u) << "space is Ġ";
  EXPECT_EQ(alphabet.codepoint_of('\n'), 0x10Au) << "newline is Ċ";
  EXPECT_EQ(alphabet.codepoint_of(0), 0x100u);
  EXPECT_EQ(alphabet.codepoint_of(0xAD), 0x143u) << "soft hyphen is the last unprintable";
  std::string all;
  for (int b = 0; b < 256; ++b)
    all += static_cast<char>(b);
  EXPECT_EQ(alphabet.to_bytes(alphabet.to_token(all), "test"), all);
  EXPECT_NE(error_of([&] { alphabet.to_bytes("\xE2\x82\xAC", "vocab.json 'v'"); })
                .find("vocab.json 'v': token '\xE2\x82\xAC' holds U+20AC, which is not in the "
                      "byte-level alphabet"),
            std::string::npos);
}

// Byte-pair encoding as its definition states it: merge the adjacent pair of lowest rank (the
// leftmost of equal ones), again and again. Quadratic and simple, for comparison.
std::vector<std::string> reference_bpe(const std::string& word, const test::Merges& merges) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < merges.size(); ++i)
    rank.emplace(merges[i], i);
  std::vector<std::string> parts;
  for (const char c : word)
    parts.emplace_back(1, c);
  for (;;) {
    size_t best = parts.size(), best_rank = merges.size();
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto found = rank.find({parts[i], parts[i + 1]});
      if (found != rank.end() && found->second < best_rank) {
        best_rank = found->second;
        best = i;
      }
    }
    if (best == parts.size()) return parts;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

TEST(Bpe, MatchesTheReferenceOnShortAndLongWords) {
  // Random merges over a three-letter alphabet, and random words of it up to 400 letters: one
  // pre-tokeniser piece each, so both the short-word and the priority-queue paths are compared.
  test::Merges merges;
  std::vector<std::string> tokens = {"a", "b", "c"};
  uint64_t counter = 0;
  while (merges.size() < 60) {
    const std::string& x = tokens[random_bits(7, 1, counter++) % tokens.size()];
    const std::string& y = tokens[random_bits(7, 1, counter++) % tokens.size()];
    if (std::find(tokens.begin(), tokens.end(), x + y) != tokens.end()) continue;
    merges.emplace_back(x, y);
    tokens.push_back(x + y);
  }
  const Tokenizer tokenizer = tiny_tokenizer(merges);
  Encoder encoder(tokenizer);
  for (int w = 0; w < 300; ++w) {
    const size_t length = 1 + random_bits(7, 2, counter++) % (w < 200 ? 70 : 400);
    std::string word;
    for (size_t i = 0; i < length; ++i)
      word += static_cast<char>('a' + random_bits(7, 3, counter++) % 3);
    std::vector<uint32_t> ids;
    encoder.encode(word, ids);
    std::vector<std::string> got;
    for (const uint32_t id : ids)
      got.push_back(tokenizer.decode(&id, 1));
    ASSERT_EQ(got, reference_bpe(word, merges)) << word;
  }
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  const Tokenizer tokenizer = tiny_tokenizer();
  // "aaa": the merge a+a applies to the leftmost pair; "aaaaa": aaaa then a.
  const auto pieces = [&](const std::string& text) {
    std::vector<std::string> out;
    for (const uint32_t id : tokenizer.encode(text))
      out.push_back(tokenizer.decode(&id, 1));
    return out;
  };
  EXPECT_EQ(pieces("aaa"), (std::vector<std::string>{"aa", "a"}));
  EXPECT_EQ(pieces("aaaaa"), (std::vector<std::string>{"aaaa", "a"}));
  EXPECT_EQ(pieces(" the hello"), (std::vector<std::string>{" the", " hello"}));
  EXPECT_EQ(pieces("it's"), (std::vector<std::string>{"i", "t", "'s"}));
  EXPECT_EQ(pieces("IT'S"), (std::vector<std::string>{"I", "T", "'", "S"}))
      << "(?i:'s) makes \"'S\" one piece; it has no merge, so it stays two tokens";
}

TEST(Tokenizer, AddedTokensAreMatchedBeforePreTokenizing) {
  const Tokenizer tokenizer = tiny_tokenizer();
  const uint32_t eos = *tokenizer.find_token("<|endoftext|>");
  const uint32_t start = *tokenizer.find_token("<|im_start|>");
  EXPECT_EQ(tokenizer.vocab_size(), 256 + 21 + 3);
  EXPECT_EQ(eos, 256u + 21);
  EXPECT_EQ(tokenizer.encode("<|endoftext|>"), std::vector<uint32_t>{eos});
  EXPECT_EQ(tokenizer.encode("<|im_start|><|endoftext|>"), (std::vector<uint32_t>{start, eos}));
  const std::vector<uint32_t> ids = tokenizer.encode("a<|endoftext|>b <|endoftext");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[1], eos);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eos), 1) << "an unfinished one is plain text";
  EXPECT_EQ(tokenizer.decode(ids), "a<|endoftext|>b <|endoftext");
  EXPECT_TRUE(tokenizer.encode("").empty());
}

TEST(Tokenizer, DecodeInvertsEncodeOnAnyText) {
  const Tokenizer tokenizer = tiny_tokenizer();
  Encoder encoder(tokenizer);
  // Random bytes made valid: every byte value, control characters, multi-byte characters.
  uint64_t counter = 0;
  std::string text, valid;
  for (int round = 0; round < 50; ++round) {
    text.clear();
    for (int i = 0; i < 300; ++i)
      text += static_cast<char>(random_bits(3, 1, counter++) & 0xFF);
    replace_invalid_utf8(text, valid);
    NfcNormalizer nfc;
    const std::string expected(nfc.normalize(valid));
    std::vector<uint32_t> ids;
    encoder.encode(valid, ids);
    ASSERT_EQ(tokenizer.decode(ids), expected);
  }
}

TEST(Tokenizer, InvalidUtf8IsAnErrorNamingTheOffset) {
  const Tokenizer tokenizer = tiny_tokenizer();
  EXPECT_NE(error_of([&] {
              tokenizer.encode("fine so far \xC3(");
            }).find("byte 0xC3 at offset 12 does not belong to a well-formed UTF-8 sequence"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              tokenizer.decode(std::vector<uint32_t>{1, 99999});
            }).find("cannot decode token id 99999 (at 1)"),
            std::string::npos);
}

TEST(TokenizerFiles, RefusesWhatItDoesNotImplement) {
  const std::string dir = test::fresh_dir();
  TokenizerFiles files;
  files.tokenizer_json = dir + "/tokenizer.json";
  const auto refused = [&](const std::string& from, const std::string& to) {
    std::string json = test::tiny_tokenizer_json();
    const size_t at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    json.replace(at, from.size(), to);
    test::write_text_file(files.tokenizer_json, json);
    return error_of([&] { read_tokenizer_files(files); });
  };
  EXPECT_NE(refused("\"NFC\"", "\"NFKC\"").find("normalizer is {\"type\":\"NFKC\"}"),
            std::string::npos);
  EXPECT_NE(refused("\"Isolated\"", "\"Removed\"").find("pre_tokenizer is"), std::string::npos);
  EXPECT_NE(refused("\"byte_fallback\": false", "\"byte_fallback\": true")
                .find("model.byte_fallback is true, expected false"),
            std::string::npos);
  EXPECT_NE(refused("\"lstrip\": false", "\"lstrip\": true")
                .find("added token '<|endoftext|>' sets 'lstrip'"),
            std::string::npos);

  // vocab.json with merges.txt: a bad merge line is named by its line number.
  const ByteLevelAlphabet alphabet;
  nlohmann::json vocab;
  for (int b = 0; b < 256; ++b)
    vocab[alphabet.to_token(std::string(1, static_cast<char>(b)))] = b;
  vocab["ab"] = 256;
  test::write_text_file(dir + "/vocab.json", vocab.dump());
  test::write_text_file(dir + "/merges.txt", "#version: 0.2\na b\nb c d\n");
  EXPECT_EQ(find_tokenizer_files(dir).tokenizer_json, dir + "/tokenizer.json")
      << "tokenizer.json is preferred";
  files = {dir + "/vocab.json", dir + "/merges.txt", ""};
  EXPECT_NE(error_of([&] {
              read_tokenizer_files(files);
            }).find("merges.txt '" + dir + "/merges.txt':3: 'b c d' is not a merge"),
            std::string::npos);
  test::write_text_file(dir + "/merges.txt", "#version: 0.2\na b\nb c\n");
  EXPECT_NE(error_of([&] {
              load_tokenizer(files);
            }).find("merge 2 'b c' uses or makes 'bc', which is not in the vocabulary"),
            std::string::npos);
  test::write_text_file(dir + "/merges.txt", "#version: 0.2\na b\n");
  const Tokenizer from_vocab = load_tokenizer(files);
  EXPECT_EQ(from_vocab.vocab_size(), 151669) << "Qwen3's added tokens follow";
  EXPECT_EQ(from_vocab.find_token("<|im_end|>"), 151645u);
  EXPECT_EQ(from_vocab.encode("ab<think>"), (std::vector<uint32_t>{256, 151667}));
  // With tokenizer.json as well, the two must agree.
  files.tokenizer_json = dir + "/tokenizer.json";
  test::write_text_file(files.tokenizer_json, test::tiny_tokenizer_json());
  EXPECT_NE(error_of([&] { read_tokenizer_files(files); }).find("disagree"), std::string::npos);
  EXPECT_NE(error_of([&] { find_tokenizer_files(dir + "/none"); }).find("holds neither"),
            std::string::npos);
}

TEST(Qwen3Tokenizer, KnownAnswers) {
  const std::string dir = test::qwen3_tokenizer_dir();
  if (dir.empty())
    GTEST_SKIP() << "Qwen3's vocab.json and merges.txt not found (../shared/tokenizers/qwen3 or "
                    "$QWEN3_TOKENIZER_DIR)";
  const Tokenizer tokenizer = load_tokenizer(find_tokenizer_files(dir));
  EXPECT_EQ(tokenizer.vocab_size(), 151669);
  EXPECT_EQ(tokenizer.num_merges(), 151387);
  EXPECT_EQ(tokenizer.encode("Hello world"), (std::vector<uint32_t>{9707, 1879}));
  EXPECT_EQ(tokenizer.encode(" Hello world"), (std::vector<uint32_t>{21927, 1879}));
  EXPECT_EQ(tokenizer.encode("<|endoftext|><|im_start|><|im_end|></think>"),
            (std::vector<uint32_t>{151643, 151644, 151645, 151668}));
  EXPECT_EQ(tokenizer.find_token("<|endoftext|>"), 151643u);
  const std::string text =
      "fn main() {\r\n\tprintln!(\"DON'T panic, I'M fine: 3.14159\");  \n}\n\n\n"
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E caf\xC3\xA9 \xF0\x9F\x8E\x89 <|im_end|>";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
}

}  // namespace
}  // namespace qwen3
