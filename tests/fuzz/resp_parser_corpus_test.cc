// Replays every file of the RESP parser's fuzz corpus through the fuzzer's check, so the
// corpus (seeds and past crashers) guards the parser in every build, g++ included.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/resp_parser_check.h"

namespace weft::fuzz {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

TEST(RespParserCorpusTest, EveryCorpusFileKeepsTheProperty) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(WEFT_RESP_PARSER_CORPUS_DIR)) {
    if (entry.is_regular_file())
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 12u) << "corpus missing from " << WEFT_RESP_PARSER_CORPUS_DIR;
  for (const std::filesystem::path& path : files) {
    EXPECT_EQ(CheckRequestParser(ReadFile(path)), "") << path.filename();
  }
}

}  // namespace
}  // namespace weft::fuzz
