// Replays every file of the peer frame fuzz corpus through the fuzzer's check, so the corpus
// (seeds and past crashers) guards the decoder and the handshakes in every build, g++ included.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/peer_frame_check.h"

namespace weft::fuzz {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

TEST(PeerFrameCorpusTest, EveryCorpusFileKeepsTheProperty) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(WEFT_PEER_FRAME_CORPUS_DIR)) {
    if (entry.is_regular_file()) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 12u) << "corpus missing from " << WEFT_PEER_FRAME_CORPUS_DIR;
  for (const std::filesystem::path& path : files) {
    EXPECT_EQ(CheckPeerFrames(ReadFile(path)), "") << path.filename();
  }
}

// The corpus must keep reaching the established state, or the fuzzer never explores what
// follows it. If the handshake's encoding changes, rewrite the seed from ValidDialerBytes().
TEST(PeerFrameCorpusTest, ValidHandshakeSeedStillEstablishes) {
  PeerFrameReport report;
  ASSERT_EQ(CheckPeerFrames(ValidDialerBytes(), &report), "");
  EXPECT_TRUE(report.acceptor_established);
  EXPECT_EQ(report.frames, 3u);
  const std::string seed =
      ReadFile(std::filesystem::path(WEFT_PEER_FRAME_CORPUS_DIR) / "valid_handshake");
  EXPECT_EQ(seed, ValidDialerBytes()) << "regenerate corpus/peer_frame/valid_handshake";
}

}  // namespace
}  // namespace weft::fuzz
