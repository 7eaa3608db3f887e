// qwen3-prep's byte-level input: every file one document whose tokens are its bytes, directories
// read recursively in sorted order, empty files skipped, a vocabulary too small for bytes refused.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/util/error.h"
#include "dataloader/prep.h"
#include "dataloader/shard_reader.h"
#include "dataloader/source.h"
#include "shard_test_util.h"

namespace qwen3 {
namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<uint32_t> byte_tokens(const std::string& bytes, uint32_t eos) {
  std::vector<uint32_t> out;
  for (const char c : bytes)
    out.push_back(static_cast<unsigned char>(c));
  out.push_back(eos);
  return out;
}

TEST(PrepBytes, ReaderGivesOneDocumentOfTheFilesBytes) {
  const std::string dir = test::fresh_dir();
  const std::string bytes("\x00\x01\x7f\x80\xff\n a", 8);
  write_file(dir + "/all.bin", bytes);
  auto reader = open_document_reader(dir + "/all.bin", PrepInputFormat::kBytes, 257, 256);
  std::vector<uint32_t> doc;
  ASSERT_TRUE(reader->next(doc));
  EXPECT_EQ(doc, (std::vector<uint32_t>{0, 1, 127, 128, 255, 10, 32, 97}));
  EXPECT_FALSE(reader->next(doc));

  write_file(dir + "/empty.bin", "");
  auto empty = open_document_reader(dir + "/empty.bin", PrepInputFormat::kBytes, 257, 256);
  EXPECT_FALSE(empty->next(doc));
  EXPECT_THROW(open_document_reader(dir + "/all.bin", PrepInputFormat::kBytes, 255, 254), Error);
}

TEST(PrepBytes, DirectoriesAreReadRecursivelyInSortedOrder) {
  const std::string dir = test::fresh_dir();
  const std::string in = dir + "/in";
  ASSERT_EQ(mkdir(in.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((in + "/sub").c_str(), 0755), 0);
  // Written out of order, so that a listing in creation order would differ from the sorted one.
  write_file(in + "/zeta.txt", "last one");
  write_file(in + "/sub/beta.txt", "in a subdirectory");
  write_file(in + "/empty.txt", "");
  write_file(in + "/alpha.txt", std::string("binary \xff\x00 too", 13));
  ASSERT_EQ(symlink("alpha.txt", (in + "/link-to-alpha").c_str()), 0);
  write_file(dir + "/single.txt", "given by name");

  const std::vector<std::string> files = expand_prep_inputs({dir + "/single.txt", in});
  EXPECT_EQ(files, (std::vector<std::string>{dir + "/single.txt", in + "/alpha.txt",
                                             in + "/empty.txt", in + "/link-to-alpha",
                                             in + "/sub/beta.txt", in + "/zeta.txt"}));

  PrepOptions options;
  options.inputs = {dir + "/single.txt", in};
  options.format = PrepInputFormat::kBytes;
  options.output_dir = dir + "/out";
  options.vocab_size = 257;
  options.eos_id = 256;
  options.tokenizer = "bytes";
  const PrepSummary summary = run_prep(options);
  const auto docs = test::read_documents(dir + "/out/train-*.h5");
  const std::vector<std::vector<uint32_t>> expected = {
      byte_tokens("given by name", 256),
      byte_tokens(std::string("binary \xff\x00 too", 13), 256),
      byte_tokens(std::string("binary \xff\x00 too", 13), 256),
      byte_tokens("in a subdirectory", 256),
      byte_tokens("last one", 256),
  };
  EXPECT_EQ(docs, expected) << "the empty file is skipped, the rest in sorted order";
  EXPECT_EQ(summary.train.documents, 5);
  EXPECT_EQ(summary.val.documents, 0);
  EXPECT_EQ(ShardReader(dir + "/out/train-00000.h5").info().vocab_size, 257);
}

TEST(PrepBytes, RefusesASmallVocabularyAndEmptyDirectories) {
  const std::string dir = test::fresh_dir();
  write_file(dir + "/a.txt", "text");
  PrepOptions options;
  options.inputs = {dir + "/a.txt"};
  options.format = PrepInputFormat::kBytes;
  options.output_dir = dir + "/out";
  options.vocab_size = 255;
  options.eos_id = 254;
  options.tokenizer = "bytes";
  try {
    run_prep(options);
    ADD_FAILURE()
        << "a vocabulary of 256 leaves no room for EOS beside the bytes; expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size must be above 255"), std::string::npos)
        << e.what();
  }
  const std::string empty = dir + "/nothing";
  ASSERT_EQ(mkdir(empty.c_str(), 0755), 0);
  try {
    expand_prep_inputs({empty});
    ADD_FAILURE() << "expected an error for a directory without files";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input directory '" + empty + "' holds no files"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(expand_prep_inputs({dir + "/absent"}), Error);
}

}  // namespace
}  // namespace qwen3
