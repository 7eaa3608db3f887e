// qwen3-prep from text (dataloader/prep.h with a small tokenizer.json, so that no Qwen files are
// needed): JSONL fields and text files through the tokenizer with EOS after each document,
// extension filters, empty documents, the three ways with invalid UTF-8, JSONL errors, the same
// shards for any thread count, and runs killed after a shard (SIGKILL through the test hook)
// that resume to exactly the files of an uninterrupted run, for text and for token ids.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/util/error.h"
#include "core/util/file_io.h"
#include "dataloader/prep.h"
#include "dataloader/shard_reader.h"
#include "dataloader/source.h"
#include "shard_test_util.h"
#include "tokenizer_test_util.h"

namespace qwen3 {
namespace {

std::string error_of(const PrepOptions& options) {
  try {
    run_prep(options);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

// Every file of a directory, name -> bytes.
std::map<std::string, std::string> directory_contents(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    files[entry.path().filename().string()] = read_file(entry.path().string());
  return files;
}

class PrepText : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir();
    test::write_text_file(dir_ + "/tokenizer.json", test::tiny_tokenizer_json());
    TokenizerFiles files;
    files.tokenizer_json = dir_ + "/tokenizer.json";
    tokenizer_ = std::make_unique<Tokenizer>(load_tokenizer(files));
    options_.tokenizer_files = files;
    options_.tokenizer = "tiny";
    options_.output_dir = dir_ + "/out";
    options_.threads = 2;
  }

  std::vector<uint32_t> expected(const std::string& text) const {
    std::vector<uint32_t> ids = tokenizer_->encode(text);
    ids.push_back(eos());
    return ids;
  }
  uint32_t eos() const { return *tokenizer_->find_token("<|endoftext|>"); }

  // A JSONL file of `count` documents of varied length and content, some in the "content" field
  // only, so that field choice matters.
  std::vector<std::string> write_corpus(const std::string& path, int count) {
    std::vector<std::string> texts;
    std::string jsonl;
    for (int i = 0; i < count; ++i) {
      std::string text;
      for (int r = 0; r <= i % 9; ++r)
        text +=
            fmt::format("Document {} says hello to the thing's {} aaaa caf\xC3\xA9\n", i, r * i);
      texts.push_back(text);
      jsonl += nlohmann::json({{"id", i}, {"text", text}, {"content", "x"}}).dump() + "\n";
    }
    test::write_text_file(path, jsonl);
    return texts;
  }

  std::string dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  PrepOptions options_;
};

TEST_F(PrepText, JsonlDocumentsAreTokenizedWithEosAfterEach) {
  test::write_text_file(dir_ + "/a.jsonl",
                        "{\"text\": \"hello the world\", \"n\": 1}\n"
                        "\n   \r\n"
                        "{\"text\": \"\"}\n"
                        "{\"text\": \"<|im_start|>it's\\r\\n\\tin\\u00e9\"}\n"
                        "{\"text\": \"ends with eos<|endoftext|>\"}");
  options_.inputs = {dir_ + "/a.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  const PrepSummary summary = run_prep(options_);
  EXPECT_EQ(test::read_documents(dir_ + "/out/train-*.h5"),
            (std::vector<std::vector<uint32_t>>{expected("hello the world"),
                                                expected("<|im_start|>it's\r\n\tin\xC3\xA9"),
                                                tokenizer_->encode("ends with eos<|endoftext|>")}))
      << "blank lines are no documents, the empty text is left out, and a document that ends "
         "with EOS gets no second one";
  EXPECT_EQ(summary.empty_documents, 1);
  EXPECT_EQ(summary.vocab_size, tokenizer_->vocab_size()) << "the tokenizer's by default";
  EXPECT_EQ(summary.eos_id, eos());
  const auto manifest = nlohmann::json::parse(read_file(dir_ + "/out/manifest.json"));
  EXPECT_EQ(manifest["input_format"], "jsonl");
  EXPECT_EQ(manifest["empty_documents"], 1);
  EXPECT_EQ(manifest["tokenizer_fingerprint"], tokenizer_->fingerprint());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out/" + kPrepProgressFile))
      << "the progress record goes once the manifest is written";
}

TEST_F(PrepText, TextFilesOfADirectoryFilteredByExtension) {
  const std::string code = dir_ + "/code";
  std::filesystem::create_directories(code + "/src");
  test::write_text_file(code + "/src/main.rs", "fn main() {\n    hello();\n}\n");
  test::write_text_file(code + "/src/lib.rs", "");
  test::write_text_file(code + "/Cargo.toml", "[package]\nname = \"the\"\n");
  test::write_text_file(code + "/README.md", "not code");
  test::write_text_file(code + "/target.bin", std::string("\xFF\xFE", 2));
  options_.inputs = {code};
  options_.format = PrepInputFormat::kText;
  options_.extensions = {".rs", ".toml"};
  const PrepSummary summary = run_prep(options_);
  EXPECT_EQ(test::read_documents(dir_ + "/out/train-*.h5"),
            (std::vector<std::vector<uint32_t>>{expected("[package]\nname = \"the\"\n"),
                                                expected("fn main() {\n    hello();\n}\n")}))
      << "sorted by path; README.md and target.bin are not read; lib.rs is empty";
  EXPECT_EQ(summary.empty_documents, 1);
  options_.extensions = {".py"};
  options_.output_dir = dir_ + "/out2";
  EXPECT_NE(error_of(options_).find("holds no files ending in .py"), std::string::npos);
}

TEST_F(PrepText, InvalidUtf8IsAnErrorOrReplacedOrSkipped) {
  test::write_text_file(dir_ + "/bad.jsonl",
                        "{\"text\": \"good one\"}\n"
                        "{\"text\": \"bad \xE2\x82 here\"}\n"
                        "{\"text\": \"also good\"}\n");
  options_.inputs = {dir_ + "/bad.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  EXPECT_NE(error_of(options_).find(dir_ + "/bad.jsonl:2: byte 35 of the file (0xE2) is not valid "
                                           "UTF-8"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out/train-00000.h5.partial"));

  options_.invalid_utf8 = InvalidUtf8::kReplace;
  PrepSummary summary = run_prep(options_);
  EXPECT_EQ(test::read_documents(dir_ + "/out/train-*.h5"),
            (std::vector<std::vector<uint32_t>>{
                expected("good one"), expected("bad \xEF\xBF\xBD here"), expected("also good")}));
  EXPECT_EQ(summary.invalid_utf8_documents, 1);

  options_.invalid_utf8 = InvalidUtf8::kSkip;
  options_.output_dir = dir_ + "/skip";
  summary = run_prep(options_);
  EXPECT_EQ(test::read_documents(dir_ + "/skip/train-*.h5"),
            (std::vector<std::vector<uint32_t>>{expected("good one"), expected("also good")}));
  EXPECT_EQ(summary.invalid_utf8_documents, 1);

  test::write_text_file(dir_ + "/bad.txt", "line one\nline \xC0\x80 two\n");
  options_.inputs = {dir_ + "/bad.txt"};
  options_.format = PrepInputFormat::kText;
  options_.invalid_utf8 = InvalidUtf8::kError;
  options_.output_dir = dir_ + "/text";
  EXPECT_NE(error_of(options_).find(dir_ + "/bad.txt:2: byte 14 of the file (0xC0)"),
            std::string::npos);
}

TEST_F(PrepText, JsonlErrorsNameTheLine) {
  options_.format = PrepInputFormat::kJsonl;
  options_.inputs = {dir_ + "/x.jsonl"};
  test::write_text_file(dir_ + "/x.jsonl", "{\"text\": \"ok\"}\n{\"content\": \"x\", \"id\": 3}\n");
  EXPECT_NE(error_of(options_).find(
                "x.jsonl:2: no field 'text' (choose the text's field with --jsonl-field; this "
                "line has 'content', 'id')"),
            std::string::npos);
  test::write_text_file(dir_ + "/x.jsonl", "{\"text\": 12}\n");
  EXPECT_NE(error_of(options_).find("x.jsonl:1: field 'text' is a number, not a string"),
            std::string::npos);
  test::write_text_file(dir_ + "/x.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n");
  EXPECT_NE(error_of(options_).find("x.jsonl:3: not a JSON object"), std::string::npos);
  test::write_text_file(dir_ + "/x.jsonl", "[1, 2]\n");
  EXPECT_NE(
      error_of(options_).find("x.jsonl:1: expected a JSON object per line, found a JSON array"),
      std::string::npos);
  options_.jsonl_field = "content";
  test::write_text_file(dir_ + "/x.jsonl", "{\"content\": \"the\"}\n");
  run_prep(options_);
  EXPECT_EQ(test::read_documents(dir_ + "/out/train-*.h5"),
            std::vector<std::vector<uint32_t>>{expected("the")});
}

TEST_F(PrepText, TheFirstBadDocumentIsTheOneReported) {
  // Two bad lines in different batches (a batch holds 256 KiB of text), with enough text after
  // them that batches are taken back while reading goes on: the error is the first line's,
  // whichever thread finishes first.
  std::string good;
  for (int i = 0; i < 100; ++i)
    good += "the hello ";
  good = nlohmann::json({{"text", good}}).dump() + "\n";
  std::string jsonl = "{\"text\": \"bad \xFF\"}\n";
  for (int i = 0; i < 2600; ++i)
    jsonl += (i == 600 ? "{\"content\": \"no text field\"}\n" : good);
  test::write_text_file(dir_ + "/two.jsonl", jsonl);
  options_.inputs = {dir_ + "/two.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  for (const int threads : {1, 2}) {
    options_.threads = threads;
    EXPECT_NE(error_of(options_).find("two.jsonl:1: byte 14 of the file (0xFF)"), std::string::npos)
        << threads << " threads";
  }
}

TEST_F(PrepText, ShardsDoNotDependOnTheThreadCount) {
  const std::vector<std::string> texts = write_corpus(dir_ + "/c.jsonl", 400);
  options_.inputs = {dir_ + "/c.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  options_.shard_tokens = 3000;
  options_.val_fraction = 0.2;
  options_.seed = 5;
  std::map<std::string, std::string> first;
  for (const int threads : {1, 2, 5}) {
    options_.threads = threads;
    options_.output_dir = fmt::format("{}/t{}", dir_, threads);
    run_prep(options_);
    const auto files = directory_contents(options_.output_dir);
    if (first.empty()) {
      first = files;
      EXPECT_GT(files.size(), 6u) << "several shards of each split";
    } else {
      EXPECT_TRUE(files == first) << threads << " threads give other files than 1";
    }
  }
  std::vector<std::vector<uint32_t>> all = test::read_documents(dir_ + "/t1/train-*.h5");
  const auto val = test::read_documents(dir_ + "/t1/val-*.h5");
  all.insert(all.end(), val.begin(), val.end());
  std::vector<std::vector<uint32_t>> want;
  for (const std::string& text : texts)
    want.push_back(expected(text));
  std::sort(all.begin(), all.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(all, want) << "every document once, in one split or the other";
}

// Runs run_prep in a child process that SIGKILLs itself as it completes shard `kill_at`, then
// reruns it here: the output must equal `reference` file for file.
void kill_then_resume(const PrepOptions& options, int kill_at,
                      const std::map<std::string, std::string>& reference) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("QWEN3_TEST_PREP_KILL_AT_SHARD", std::to_string(kill_at).c_str(), 1);
    try {
      run_prep(options);
    } catch (...) {
      _exit(3);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child was not killed at shard " << kill_at << " (status " << status << ")";
  EXPECT_TRUE(std::filesystem::exists(options.output_dir + "/" + kPrepProgressFile) ||
              kill_at == 1);
  const PrepSummary summary = run_prep(options);
  EXPECT_EQ(summary.resumed_shards, kill_at - 1);
  EXPECT_TRUE(directory_contents(options.output_dir) == reference)
      << "killed at shard " << kill_at << ", the resumed run wrote other files";
}

TEST_F(PrepText, AKilledRunResumesToTheSameFiles) {
  write_corpus(dir_ + "/c1.jsonl", 150);
  write_corpus(dir_ + "/c2.jsonl", 90);
  options_.inputs = {dir_ + "/c1.jsonl", dir_ + "/c2.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  options_.shard_tokens = 2500;
  for (const double val_fraction : {0.0, 0.25}) {
    options_.val_fraction = val_fraction;
    options_.output_dir = dir_ + "/reference";
    std::filesystem::remove_all(options_.output_dir);
    const PrepSummary whole = run_prep(options_);
    const auto reference = directory_contents(options_.output_dir);
    const int shards = static_cast<int>(whole.train.shards.size() + whole.val.shards.size());
    ASSERT_GE(shards, 6);
    for (const int kill_at : {1, 2, shards / 2, shards}) {
      options_.output_dir = fmt::format("{}/killed-{}-{}", dir_, val_fraction, kill_at);
      kill_then_resume(options_, kill_at, reference);
    }
  }
}

TEST_F(PrepText, TokenIdInputResumesToo) {
  // Three files, so that a resumed run starts in one file and goes on through the others.
  options_ = PrepOptions();
  for (int file = 0; file < 3; ++file) {
    std::string ids;
    for (int d = 0; d < 100; ++d) {
      for (int t = 0; t <= d % 23; ++t)
        ids += std::to_string((d * 31 + t * 7 + file) % 1000) + " ";
      ids += "\n";
    }
    const std::string path = fmt::format("{}/ids-{}.txt", dir_, file);
    test::write_text_file(path, ids);
    options_.inputs.push_back(path);
  }
  options_.vocab_size = 1001;
  options_.eos_id = 1000;
  options_.tokenizer = "ids";
  options_.shard_tokens = 400;
  for (const double val_fraction : {0.0, 0.3}) {
    options_.val_fraction = val_fraction;
    options_.output_dir = fmt::format("{}/reference-{}", dir_, val_fraction);
    const PrepSummary whole = run_prep(options_);
    const auto reference = directory_contents(options_.output_dir);
    const int shards = static_cast<int>(whole.train.shards.size() + whole.val.shards.size());
    ASSERT_GE(shards, 6);
    for (const int kill_at : {2, shards / 2 + 1, shards}) {
      options_.output_dir = fmt::format("{}/killed-{}-{}", dir_, val_fraction, kill_at);
      kill_then_resume(options_, kill_at, reference);
    }
  }
}

TEST_F(PrepText, ResumingRefusesOtherSettingsAndChangedShards) {
  write_corpus(dir_ + "/c.jsonl", 120);
  options_.inputs = {dir_ + "/c.jsonl"};
  options_.format = PrepInputFormat::kJsonl;
  options_.shard_tokens = 2500;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("QWEN3_TEST_PREP_KILL_AT_SHARD", "3", 1);
    try {
      run_prep(options_);
    } catch (...) {
    }
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  PrepOptions other = options_;
  other.seed = 9;
  EXPECT_NE(error_of(other).find("cannot resume the run recorded in '" + options_.output_dir +
                                 "/prep-progress.json': 'seed' was 0 and is now 9"),
            std::string::npos);
  test::write_text_file(dir_ + "/c.jsonl", read_file(dir_ + "/c.jsonl") + "{\"text\": \"more\"}\n");
  EXPECT_NE(error_of(options_).find("input file 1 was"), std::string::npos);
  write_corpus(dir_ + "/c.jsonl", 120);
  test::write_text_file(options_.output_dir + "/train-00001.h5.partial", "damaged");
  EXPECT_NE(error_of(options_).find("shard '" + options_.output_dir +
                                    "/train-00001.h5.partial' has changed since"),
            std::string::npos);
}

}  // namespace
}  // namespace qwen3
