// The property the peer frame decoder and the handshake state machines must keep on any input,
// shared by the libFuzzer target (peer_frame_fuzzer) and the corpus replay unit test
// (peer_frame_corpus_test).
//
// The property: decoding a byte stream gives the same frames and the same outcome (need more,
// or the same error text) whether the bytes arrive whole, one byte at a time, or in pieces
// whose sizes are derived from the input, through Feed or through PrepareAppend/CommitAppend;
// the decoded frames re-encode to exactly the bytes they came from; the buffer stays within
// its bound of what arrived. Checked under the default limit and a tiny one. Then the frames
// the handshake limit lets through are fed to an acceptor and a dialer (fixed identities,
// secret and nonces): a refusal is final, carries a reason and sends nothing; every reply is
// one whole handshake frame of the right type; an acceptor is established only by a Proof
// after a Hello, at most once, and refuses every frame after.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace weft::fuzz {

struct PeerFrameReport {
  size_t frames = 0;                  // decoded under the default limit
  bool acceptor_established = false;  // the input authenticated as the check's dialer
};

// Returns "" when the decoder and the handshakes keep the property on `data`; otherwise a
// description of the first violation. Fills *report if given.
std::string CheckPeerFrames(std::string_view data, PeerFrameReport* report = nullptr);

// What the check's dialer sends to complete a handshake with the check's acceptor (Hello,
// Proof), followed by one data frame: a seed that reaches the established state.
std::string ValidDialerBytes();

}  // namespace weft::fuzz
