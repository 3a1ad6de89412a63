// The handshake state machines driven directly, as a simulator would: the happy path and every
// refusal (wrong secret either way, wrong cluster, self-connection, replayed or corrupted
// proofs, unknown version, malformed and out-of-order frames).
#include "weft/transport/handshake.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

#include "weft/transport/frame.h"

namespace weft::transport {
namespace {

constexpr const char* kSecret = "a-cluster-secret-of-enough-bytes";

// A frame as the peer would see it.
Frame DecodeOne(const std::string& wire, FrameDecoder* decoder) {
  decoder->Feed(wire.data(), wire.size());
  Frame frame;
  EXPECT_EQ(decoder->Next(&frame), FrameDecoder::Result::kFrame);
  return frame;
}

std::string Nonce(char fill) {
  return std::string(kNonceBytes, fill);
}

bool Contains(const Status& status, std::string_view text) {
  return std::string_view(status.message().data(), status.message().size()).find(text) !=
         std::string_view::npos;
}

// Both sides in memory, with fixed nonces so a test can replay messages.
struct Pair {
  explicit Pair(std::string dialer_secret = kSecret, std::string acceptor_secret = kSecret,
                std::string dialer_cluster = "prod", uint64_t dialer_id = 1,
                char dialer_nonce = 'd', char acceptor_nonce = 'a')
      : dialer({dialer_cluster, dialer_id, "dialer"}, dialer_secret, {1, 7}, Nonce(dialer_nonce)),
        acceptor({"prod", 2, "acceptor"}, acceptor_secret, Nonce(acceptor_nonce)) {}

  // Hello -> Challenge. Returns the acceptor's step.
  HandshakeStep HelloToAcceptor() {
    FrameDecoder decoder;
    const Frame hello = DecodeOne(dialer.Hello(), &decoder);
    return acceptor.OnFrame(hello.type, hello.payload);
  }
  HandshakeStep ToDialer(const std::string& wire) {
    FrameDecoder decoder;
    const Frame frame = DecodeOne(wire, &decoder);
    return dialer.OnFrame(frame.type, frame.payload);
  }
  HandshakeStep ToAcceptor(const std::string& wire) {
    FrameDecoder decoder;
    const Frame frame = DecodeOne(wire, &decoder);
    return acceptor.OnFrame(frame.type, frame.payload);
  }

  DialerHandshake dialer;
  AcceptorHandshake acceptor;
};

std::string MakeFrame(HandshakeType type, std::string_view payload) {
  std::string frame;
  AppendFrame(&frame, static_cast<uint8_t>(type), payload);
  return frame;
}

TEST(HandshakeTest, SameSecretEstablishesBothSidesWithEachOthersIdentity) {
  Pair pair;
  EXPECT_STREQ(pair.acceptor.waiting_for(), "Hello");
  HandshakeStep challenge = pair.HelloToAcceptor();
  ASSERT_TRUE(challenge.status.ok()) << challenge.status;
  EXPECT_FALSE(challenge.established);
  EXPECT_STREQ(pair.acceptor.waiting_for(), "Proof");
  HandshakeStep proof = pair.ToDialer(challenge.reply);
  ASSERT_TRUE(proof.status.ok()) << proof.status;
  EXPECT_FALSE(proof.established);  // not before the acceptor's Welcome
  HandshakeStep welcome = pair.ToAcceptor(proof.reply);
  ASSERT_TRUE(welcome.status.ok()) << welcome.status;
  EXPECT_TRUE(welcome.established);
  HandshakeStep done = pair.ToDialer(welcome.reply);
  ASSERT_TRUE(done.status.ok()) << done.status;
  EXPECT_TRUE(done.established);
  EXPECT_TRUE(done.reply.empty());

  EXPECT_TRUE(pair.dialer.established());
  EXPECT_TRUE(pair.acceptor.established());
  EXPECT_EQ(pair.acceptor.peer().member_id, 1u);
  EXPECT_EQ(pair.acceptor.peer().member_name, "dialer");
  EXPECT_EQ(pair.acceptor.peer().cluster, "prod");
  EXPECT_EQ(pair.acceptor.channel().kind, 1);
  EXPECT_EQ(pair.acceptor.channel().lane, 7);
  EXPECT_EQ(pair.dialer.peer().member_id, 2u);
  EXPECT_EQ(pair.dialer.peer().member_name, "acceptor");

  // Nothing more is accepted once done.
  EXPECT_FALSE(pair.ToAcceptor(proof.reply).status.ok());
  EXPECT_FALSE(pair.ToDialer(welcome.reply).status.ok());
}

TEST(HandshakeTest, DialerRefusesAnAcceptorWithAnotherSecretAndSendsNothing) {
  Pair pair(kSecret, "another-secret-entirely-0123456");
  HandshakeStep challenge = pair.HelloToAcceptor();
  ASSERT_TRUE(challenge.status.ok());
  HandshakeStep proof = pair.ToDialer(challenge.reply);
  EXPECT_EQ(proof.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(proof.status,
                       "the acceptor acceptor (0000000000000002) failed to prove "
                       "it knows the cluster secret"))
      << proof.status;
  EXPECT_TRUE(proof.reply.empty());
  EXPECT_FALSE(pair.dialer.established());
}

TEST(HandshakeTest, AcceptorRefusesADialerWhoseProofIsWrong) {
  // An honest dialer with another secret refuses the Challenge and sends nothing; a broken or
  // hostile one that sends a proof anyway is refused by the acceptor.
  Pair pair;
  HandshakeStep challenge = pair.HelloToAcceptor();
  ASSERT_TRUE(challenge.status.ok());
  std::string corrupted = pair.ToDialer(challenge.reply).reply;
  corrupted[kFrameHeaderBytes + 5] ^= 0x40;
  // Re-frame so the checksum is valid and only the proof is wrong.
  std::string reframed =
      MakeFrame(HandshakeType::kProof, std::string_view(corrupted).substr(kFrameHeaderBytes));
  HandshakeStep refused = pair.ToAcceptor(reframed);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Contains(refused.status, "the dialer dialer (0000000000000001) failed to prove"))
      << refused.status;
  EXPECT_TRUE(refused.reply.empty());
  EXPECT_FALSE(refused.established);
  EXPECT_STREQ(pair.acceptor.waiting_for(), "nothing");
}

TEST(HandshakeTest, ReplayedProofFromAnEarlierSessionIsRefused) {
  // Record a complete, valid exchange...
  Pair recorded;
  HandshakeStep challenge = recorded.HelloToAcceptor();
  HandshakeStep proof = recorded.ToDialer(challenge.reply);
  ASSERT_TRUE(proof.status.ok());
  // ...and replay the dialer's messages to an acceptor that draws a fresh nonce.
  Pair fresh(kSecret, kSecret, "prod", 1, 'd', 'A');
  ASSERT_TRUE(fresh.HelloToAcceptor().status.ok());
  HandshakeStep replayed = fresh.ToAcceptor(proof.reply);
  EXPECT_FALSE(replayed.status.ok());
  EXPECT_TRUE(Contains(replayed.status, "failed to prove")) << replayed.status;
}

TEST(HandshakeTest, AcceptorsProofCannotServeAsTheDialers) {
  // A reflection: send the acceptor its own proof_a back as the dialer's proof.
  Pair pair;
  HandshakeStep challenge = pair.HelloToAcceptor();
  const std::string proof_a = challenge.reply.substr(challenge.reply.size() - kProofBytes);
  HandshakeStep reflected = pair.ToAcceptor(MakeFrame(HandshakeType::kProof, proof_a));
  EXPECT_FALSE(reflected.status.ok());
}

TEST(HandshakeTest, CorruptedChallengeProofIsRefusedByTheDialer) {
  Pair pair;
  HandshakeStep challenge = pair.HelloToAcceptor();
  std::string payload = challenge.reply.substr(kFrameHeaderBytes);
  payload.back() ^= 1;
  HandshakeStep step = pair.ToDialer(MakeFrame(HandshakeType::kChallenge, payload));
  EXPECT_TRUE(Contains(step.status, "failed to prove")) << step.status;
}

TEST(HandshakeTest, OtherClusterIsRefusedNamingBoth) {
  Pair pair(kSecret, kSecret, "staging");
  HandshakeStep step = pair.HelloToAcceptor();
  EXPECT_EQ(step.status.message(),
            "the dialer dialer belongs to cluster 'staging'; this member to 'prod'");
  EXPECT_TRUE(step.reply.empty());
}

TEST(HandshakeTest, ConnectionToItselfIsRefusedOnBothSides) {
  Pair pair(kSecret, kSecret, "prod", /*dialer_id=*/2);
  HandshakeStep step = pair.HelloToAcceptor();
  EXPECT_TRUE(Contains(step.status, "the dialer has this member's own id 0000000000000002"))
      << step.status;

  // A Challenge naming the dialer's own id (what a dialer sees when it reached itself through
  // an address that is not recognisably its own).
  DialerHandshake dialer({"prod", 5, "me"}, kSecret, {}, Nonce('x'));
  AcceptorHandshake same({"prod", 5, "me"}, kSecret, Nonce('y'));
  FrameDecoder decoder;
  const Frame hello = DecodeOne(dialer.Hello(), &decoder);
  HandshakeStep refused = same.OnFrame(hello.type, hello.payload);
  EXPECT_FALSE(refused.status.ok());
  std::string challenge;
  challenge.append("\5\0\0\0\0\0\0\0", 8);
  challenge.append("\2me");
  challenge.append(Nonce('y'));
  challenge.append(std::string(kProofBytes, 'p'));
  HandshakeStep step2 = dialer.OnFrame(static_cast<uint8_t>(HandshakeType::kChallenge), challenge);
  EXPECT_TRUE(Contains(step2.status, "the acceptor has this member's own id")) << step2.status;
}

TEST(HandshakeTest, UnknownVersionIsNamedAsSuch) {
  Pair pair;
  FrameDecoder decoder;
  const Frame hello = DecodeOne(pair.dialer.Hello(), &decoder);
  std::string payload(hello.payload);
  payload[0] = 9;
  HandshakeStep step = pair.acceptor.OnFrame(hello.type, payload);
  EXPECT_EQ(step.status.message(), "the dialer speaks protocol version 9; this member speaks 1");
}

TEST(HandshakeTest, MalformedAndOutOfOrderFramesAreRefused) {
  struct Case {
    uint8_t type;
    std::string payload;
    const char* message;
  };
  FrameDecoder decoder;
  Pair reference;
  const std::string hello(DecodeOne(reference.dialer.Hello(), &decoder).payload);
  for (const Case& c : {
           Case{1, "", "malformed Hello (empty)"},
           Case{1, hello.substr(0, hello.size() - 1), "malformed Hello"},
           Case{1, hello + "x", "malformed Hello"},
           Case{1, std::string("\1\377prod", 6), "malformed Hello"},
           Case{3, std::string(kProofBytes, 'p'),
                "unexpected frame type 3 during the handshake "
                "(expected Hello)"},
           Case{16, "data", "a data frame (type 16) before the handshake completed"},
           Case{0, "", "unexpected frame type 0"},
       }) {
    Pair pair;
    HandshakeStep step = pair.acceptor.OnFrame(c.type, c.payload);
    EXPECT_TRUE(Contains(step.status, c.message)) << step.status << " for " << c.message;
    EXPECT_TRUE(step.reply.empty());
    // A failed handshake stays failed, even for a valid Hello.
    EXPECT_FALSE(pair.acceptor.OnFrame(1, hello).status.ok());
  }

  Pair pair;
  HandshakeStep challenge = pair.HelloToAcceptor();
  // A second Hello where the Proof belongs.
  HandshakeStep twice = pair.acceptor.OnFrame(1, hello);
  EXPECT_TRUE(Contains(twice.status, "expected Proof")) << twice.status;
  // A short Proof.
  Pair short_proof;
  short_proof.HelloToAcceptor().status.IgnoreError();
  EXPECT_TRUE(
      Contains(short_proof.acceptor.OnFrame(3, "short").status, "malformed Proof (5 bytes"));

  // The dialer: a Welcome before the Challenge, a truncated Challenge, a Welcome with a body.
  Pair early;
  EXPECT_TRUE(Contains(early.dialer.OnFrame(4, "").status, "expected Challenge"));
  Pair truncated;
  std::string body = truncated.HelloToAcceptor().reply.substr(kFrameHeaderBytes);
  EXPECT_TRUE(Contains(truncated.dialer.OnFrame(2, body.substr(0, 40)).status,
                       "malformed Challenge (40 bytes)"));
  Pair fat;
  HandshakeStep fat_challenge = fat.HelloToAcceptor();
  ASSERT_TRUE(fat.ToDialer(fat_challenge.reply).status.ok());
  EXPECT_TRUE(Contains(fat.dialer.OnFrame(4, "x").status, "malformed Welcome"));
}

TEST(HandshakeTest, PeerChosenNamesAreEscapedInReasons) {
  DialerHandshake dialer({"other\ncluster", 1, "evil\x1b[31m"}, kSecret, {}, Nonce('d'));
  AcceptorHandshake acceptor({"prod", 2, "acceptor"}, kSecret, Nonce('a'));
  FrameDecoder decoder;
  const Frame hello = DecodeOne(dialer.Hello(), &decoder);
  HandshakeStep step = acceptor.OnFrame(hello.type, hello.payload);
  EXPECT_EQ(step.status.message(),
            "the dialer evil\\x1b[31m belongs to cluster 'other\\x0acluster'; this member to "
            "'prod'");
}

TEST(HandshakeTest, ConfigurationIsValidated) {
  EXPECT_FALSE(ValidateHandshakeConfig({"c", 1, "n"}, "").ok());
  EXPECT_FALSE(ValidateHandshakeConfig({std::string(256, 'c'), 1, "n"}, kSecret).ok());
  EXPECT_FALSE(ValidateHandshakeConfig({"c", 1, std::string(256, 'n')}, kSecret).ok());
  EXPECT_TRUE(
      ValidateHandshakeConfig({std::string(255, 'c'), 1, std::string(255, 'n')}, kSecret).ok());
  EXPECT_EQ(NewNonce().size(), kNonceBytes);
  EXPECT_NE(NewNonce(), NewNonce());
}

}  // namespace
}  // namespace weft::transport
