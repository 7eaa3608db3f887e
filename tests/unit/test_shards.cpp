// The shard format: what the writer writes reads back, and every kind of bad file fails with a
// message that names the file and the problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/util/error.h"
#include "dataloader/loader.h"
#include "dataloader/shard_reader.h"
#include "shard_test_util.h"

namespace qwen3 {
namespace {

using test::Documents;
using test::RawHdf5File;

// Runs `open` and returns the error message, failing the test if nothing was thrown.
template <class F>
std::string error_of(F&& open) {
  try {
    open();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text)

TEST(Shards, WriterOutputReadsBackExactly) {
  const std::string dir = test::fresh_dir();
  // 700 short documents: several blocks of the sparse offset index (one entry per 256).
  const Documents docs = test::random_documents(700, 1, 30, 1024, 1023, 5);
  // A chunk smaller than the shard, so the data spans several chunks and a partial last one.
  test::write_shard(dir + "/a.h5", docs, 1024, 1023, "tok-name", 1000);
  ShardReader reader(dir + "/a.h5");
  const ShardInfo& info = reader.info();
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.vocab_size, 1024);
  EXPECT_EQ(info.eos_id, 1023);
  EXPECT_EQ(info.tokenizer, "tok-name");
  EXPECT_EQ(info.num_documents, 700);
  std::vector<uint32_t> all;
  std::vector<int64_t> offsets = {0};
  for (const auto& d : docs) {
    all.insert(all.end(), d.begin(), d.end());
    offsets.push_back(static_cast<int64_t>(all.size()));
  }
  ASSERT_EQ(info.num_tokens, static_cast<int64_t>(all.size()));
  EXPECT_EQ(reader.read_doc_offsets(), offsets);
  // Document starts strictly inside a range, found through the sparse index: every range.
  std::vector<int64_t> starts;
  for (int64_t begin = 0; begin < info.num_tokens; begin += 37)
    for (int64_t end : {begin + 1, begin + 50, begin + 3000}) {
      reader.document_starts(begin, end, starts);
      std::vector<int64_t> expected;
      for (int64_t o : offsets)
        if (o > begin && o < end) expected.push_back(o);
      ASSERT_EQ(starts, expected) << "range " << begin << ".." << end;
    }
  std::vector<uint32_t> back(all.size());
  reader.read_tokens(0, info.num_tokens, back.data());
  EXPECT_EQ(back, all);
  // A range across a chunk boundary, after closing and reopening the file.
  reader.release();
  EXPECT_FALSE(reader.is_open());
  std::vector<uint32_t> part(50);
  reader.read_tokens(980, 50, part.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), all.begin() + 980));
  EXPECT_TRUE(reader.is_open());
  EXPECT_THROW(reader.read_tokens(info.num_tokens - 2, 3, part.data()), Error);
}

TEST(Shards, UnfinishedWriterLeavesNoFile) {
  const std::string dir = test::fresh_dir();
  {
    ShardWriter writer(dir + "/a.h5", {1024, 1023, "t"}, 64);
    const uint32_t doc[3] = {1, 2, 1023};
    writer.add_document(doc, 3);
    // Destroyed without finish(): an interrupted write.
  }
  EXPECT_NE(access((dir + "/a.h5").c_str(), F_OK), 0);
  EXPECT_NE(access((dir + "/a.h5.partial").c_str(), F_OK), 0);
  ShardWriter writer(dir + "/b.h5", {1024, 1023, "t"}, 64);
  const uint32_t too_big[2] = {5, 1024};
  EXPECT_CONTAINS(error_of([&] { writer.add_document(too_big, 2); }), "not below vocab_size 1024");
}

TEST(ShardErrors, MissingFileDirectoryAndNotHdf5) {
  const std::string dir = test::fresh_dir();
  std::string m = error_of([&] { ShardReader r(dir + "/absent.h5"); });
  EXPECT_CONTAINS(m, dir + "/absent.h5");
  EXPECT_CONTAINS(m, "does not exist");
  m = error_of([&] { ShardReader r(dir); });
  EXPECT_CONTAINS(m, "is a directory");
  std::ofstream(dir + "/text.h5") << "1 2 3\n";
  m = error_of([&] { ShardReader r(dir + "/text.h5"); });
  EXPECT_CONTAINS(m, dir + "/text.h5");
  EXPECT_CONTAINS(m, "is not an HDF5 file");
  m = error_of([&] { Source s("web", dir + "/none-*.h5", 8, 1024); });
  EXPECT_CONTAINS(m, "data source 'web'");
  EXPECT_CONTAINS(m, "matches no files");
}

TEST(ShardErrors, TruncatedFile) {
  const std::string dir = test::fresh_dir();
  test::write_shard(dir + "/full.h5", test::random_documents(20, 100, 200, 1024, 1023, 1));
  std::ifstream in(dir + "/full.h5", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 8000u);
  // Cut in the token data, as an interrupted copy would.
  std::ofstream(dir + "/cut.h5", std::ios::binary) << bytes.substr(0, bytes.size() - 4000);
  const std::string m = error_of([&] { ShardReader r(dir + "/cut.h5"); });
  EXPECT_CONTAINS(m, dir + "/cut.h5");
  EXPECT_CONTAINS(m, "is truncated");
}

TEST(ShardErrors, MissingDatasetsAndAttributes) {
  const std::string dir = test::fresh_dir();
  const std::vector<uint32_t> tokens = {1, 2, 3, 1023};
  const std::vector<uint64_t> offsets = {0, 4};
  {
    RawHdf5File f(dir + "/no_tokens.h5");
    f.standard_attributes();
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, offsets);
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/no_tokens.h5"); }),
                  "no_tokens.h5': has no dataset 'tokens'");
  {
    RawHdf5File f(dir + "/no_offsets.h5");
    f.standard_attributes();
    f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens);
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/no_offsets.h5"); }),
                  "no_offsets.h5': has no dataset 'doc_offsets'");
  {
    RawHdf5File f(dir + "/no_vocab.h5");
    f.string_attribute("format", "qwen3-train-shard");
    f.int_attribute("format_version", 1);
    f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens);
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, offsets);
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/no_vocab.h5"); }),
                  "no_vocab.h5': has no attribute 'vocab_size'");
  {
    // An array where one string belongs: refused, not read past a one-string buffer.
    RawHdf5File f(dir + "/array_attribute.h5");
    f.string_array_attribute("format", "qwen3-train-shard", 1000);
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/array_attribute.h5"); }),
                  "attribute 'format' is string but must be one string");
  {
    RawHdf5File f(dir + "/other_format.h5");
    f.string_attribute("format", "something-else");
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/other_format.h5"); }),
                  "attribute 'format' is 'something-else'");
  {
    RawHdf5File f(dir + "/future.h5");
    f.string_attribute("format", "qwen3-train-shard");
    f.int_attribute("format_version", 2);
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/future.h5"); }),
                  "has format_version 2, but this build reads versions 1 to 1");
}

TEST(ShardErrors, WrongTokenDtype) {
  const std::string dir = test::fresh_dir();
  const std::vector<uint64_t> offsets = {0, 4};
  {
    RawHdf5File f(dir + "/int64.h5");
    f.standard_attributes();
    f.dataset("tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, std::vector<int64_t>{1, 2, 3, 1023});
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, offsets);
  }
  std::string m = error_of([&] { ShardReader r(dir + "/int64.h5"); });
  EXPECT_CONTAINS(m, "int64.h5': dataset 'tokens' has dtype int64, expected uint32");
  {
    RawHdf5File f(dir + "/uint16.h5");
    f.standard_attributes();
    f.dataset("tokens", H5T_STD_U16LE, H5T_NATIVE_UINT16, std::vector<uint16_t>{1, 2, 3, 1023});
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, offsets);
  }
  m = error_of([&] { ShardReader r(dir + "/uint16.h5"); });
  EXPECT_CONTAINS(m, "dataset 'tokens' has dtype uint16, expected uint32");
  {
    RawHdf5File f(dir + "/float_offsets.h5");
    f.standard_attributes();
    f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, std::vector<uint32_t>{1, 2, 3, 1023});
    f.dataset("doc_offsets", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, std::vector<double>{0, 4});
  }
  m = error_of([&] { ShardReader r(dir + "/float_offsets.h5"); });
  EXPECT_CONTAINS(m, "dataset 'doc_offsets' has dtype float64, expected uint64");
}

TEST(ShardErrors, EmptyShardAndBadOffsets) {
  const std::string dir = test::fresh_dir();
  {
    RawHdf5File f(dir + "/empty.h5");
    f.standard_attributes();
    f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, std::vector<uint32_t>{});
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, std::vector<uint64_t>{0});
  }
  EXPECT_CONTAINS(error_of([&] { ShardReader r(dir + "/empty.h5"); }),
                  "empty.h5': is empty: dataset 'tokens' has 0 tokens");
  const std::vector<uint32_t> tokens = {1, 2, 3, 4, 5, 1023};
  const std::vector<std::pair<std::vector<uint64_t>, std::string>> cases = {
      {{0, 3, 5}, "the last doc_offsets entry is 5, but the shard has 6 tokens"},
      {{1, 6}, "doc_offsets[0] is 1, must be 0"},
      {{0, 4, 2, 6}, "entry 2 is 2 after 4"},
      {{0, 3, 3, 6}, "entry 2 is 3 after 3"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = dir + "/offsets" + std::to_string(i) + ".h5";
    {
      RawHdf5File f(path);
      f.standard_attributes();
      f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens);
      f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, cases[i].first);
    }
    const std::string m = error_of([&] { ShardReader r(path); });
    EXPECT_CONTAINS(m, path);
    EXPECT_CONTAINS(m, cases[i].second);
  }
}

TEST(ShardErrors, ShardShorterThanAWindowAndVocabTooLarge) {
  const std::string dir = test::fresh_dir();
  test::write_shard(dir + "/long.h5", test::random_documents(10, 50, 60, 1024, 1023, 2));
  test::write_shard(dir + "/short.h5", {{1, 2, 3, 1023}});
  std::string m = error_of([&] { Source s("web", dir + "/*.h5", 16, 1024); });
  EXPECT_CONTAINS(m, "short.h5' has 4 tokens, fewer than one window of seq_len + 1 = 17 tokens");
  test::write_shard(dir + "/big_vocab.h5", test::random_documents(10, 50, 60, 1024, 1023, 2), 2048,
                    1023);
  m = error_of([&] { Source s("web", dir + "/big_vocab.h5", 16, 1024); });
  EXPECT_CONTAINS(m, "big_vocab.h5' was tokenized with vocab_size 2048");
  EXPECT_CONTAINS(m, "larger than the model's vocab_size 1024");
}

TEST(ShardErrors, MixedTokenizersInOneSource) {
  const std::string dir = test::fresh_dir();
  const Documents docs = test::random_documents(10, 50, 60, 1000, 999, 2);
  test::write_shard(dir + "/a.h5", docs, 1024, 1023, "tok-a");
  test::write_shard(dir + "/b.h5", docs, 1024, 1023, "tok-b");
  const std::string m = error_of([&] { Source s("web", dir + "/*.h5", 16, 1024); });
  EXPECT_CONTAINS(m, "mixes tokenizers");
  EXPECT_CONTAINS(m, "tok-b");
}

TEST(ShardErrors, TokenAtOrAboveModelVocabFailsTheBatchNamingTheShard) {
  const std::string dir = test::fresh_dir();
  // The shard claims vocab 1024 but holds a 1500 at token 70: corrupt data, caught when read.
  Documents docs = test::random_documents(4, 40, 40, 1024, 1023, 3);
  docs[1][30] = 1500;
  {
    RawHdf5File f(dir + "/bad.h5");
    f.standard_attributes();
    std::vector<uint32_t> tokens;
    std::vector<uint64_t> offsets = {0};
    for (const auto& d : docs) {
      tokens.insert(tokens.end(), d.begin(), d.end());
      offsets.push_back(tokens.size());
    }
    f.dataset("tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens);
    f.dataset("doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, offsets);
  }
  LoaderConfig config;
  config.sources = {{"web", dir + "/bad.h5", 1.0}};
  config.seq_len = 10;
  config.global_batch = 15;  // every window in the first step
  config.vocab_size = 1024;
  TrainLoader loader(config);
  // The error happens on the prefetch thread and surfaces here, with its message.
  const std::string m = error_of([&] { loader.next(); });
  EXPECT_CONTAINS(m, "bad.h5': token 1500 at position 70 is not below the model's vocab_size 1024");
}

}  // namespace
}  // namespace qwen3
