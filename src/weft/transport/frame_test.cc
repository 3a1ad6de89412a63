// Frames: encoding, incremental decoding in any chunking, every refusal, memory bounds.
#include "weft/transport/frame.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

#include "weft/base/hash.h"

namespace weft::transport {
namespace {

using Frames = std::vector<std::pair<uint8_t, std::string>>;

// Decodes `wire` fed in pieces of `step` bytes; returns the frames and the final result.
std::pair<Frames, FrameDecoder::Result> Decode(std::string_view wire, size_t step,
                                               size_t max_payload_bytes = kFramePayloadMax) {
  FrameDecoder decoder(max_payload_bytes);
  Frames frames;
  FrameDecoder::Result result = FrameDecoder::Result::kNeedMore;
  for (size_t offset = 0; offset < wire.size(); offset += step) {
    decoder.Feed(wire.data() + offset, std::min(step, wire.size() - offset));
    Frame frame;
    while ((result = decoder.Next(&frame)) == FrameDecoder::Result::kFrame) {
      frames.emplace_back(frame.type, std::string(frame.payload));
    }
    if (result == FrameDecoder::Result::kError) {
      break;
    }
  }
  return {frames, result};
}

std::string Wire() {
  std::string wire;
  AppendFrame(&wire, 16, "hello");
  AppendFrame(&wire, 17, std::string(100'000, 'x'));
  AppendFrame(&wire, 255, "");
  AppendFrame(&wire, 1, std::string("\0\1\2", 3));
  return wire;
}

TEST(FrameTest, HeaderLayoutIsAsDocumented) {
  std::string wire;
  AppendFrame(&wire, 0x21, "abc");
  ASSERT_EQ(wire.size(), kFrameHeaderBytes + 3);
  EXPECT_EQ(wire[0], kProtocolVersion);
  EXPECT_EQ(wire[1], 0x21);
  EXPECT_EQ(wire[2], 0);
  EXPECT_EQ(wire[3], 0);
  EXPECT_EQ(wire.substr(4, 4), std::string("\3\0\0\0", 4));
  const uint32_t checksum = static_cast<uint32_t>(Hash64("abc", 0x21));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(static_cast<uint8_t>(wire[8 + i]), static_cast<uint8_t>(checksum >> (8 * i)));
  }
  EXPECT_EQ(wire.substr(12), "abc");
}

TEST(FrameTest, RoundTripIsTheSameInAnyChunking) {
  const std::string wire = Wire();
  const auto [whole, whole_result] = Decode(wire, wire.size());
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole_result, FrameDecoder::Result::kNeedMore);
  EXPECT_EQ(whole[0], (std::pair<uint8_t, std::string>{16, "hello"}));
  EXPECT_EQ(whole[1].second, std::string(100'000, 'x'));
  EXPECT_EQ(whole[2], (std::pair<uint8_t, std::string>{255, ""}));
  EXPECT_EQ(whole[3].second, std::string("\0\1\2", 3));
  for (size_t step : {size_t{1}, size_t{5}, size_t{12}, size_t{13}, size_t{4096}}) {
    const auto [frames, result] = Decode(wire, step);
    EXPECT_EQ(frames, whole) << "step " << step;
    EXPECT_EQ(result, whole_result) << "step " << step;
  }
}

TEST(FrameTest, BuilderWritesTheSameBytesAsAppendFrame) {
  std::string expected = "prefix";
  AppendFrame(&expected, 42, "payload bytes");
  std::string built = "prefix";
  FrameBuilder frame(&built, 42);
  frame.out()->append("payload");
  frame.out()->append(" bytes");
  EXPECT_EQ(frame.payload_bytes(), 13u);
  frame.Finish();
  EXPECT_EQ(built, expected);

  std::string abandoned = "prefix";
  FrameBuilder nothing(&abandoned, 42);
  nothing.out()->append("half a payload");
  nothing.Abandon();
  EXPECT_EQ(abandoned, "prefix");
}

TEST(FrameTest, CountsWholeFramesOnly) {
  const std::string wire = Wire();
  EXPECT_EQ(CountWholeFrames(wire), 4u);
  EXPECT_EQ(CountWholeFrames(""), 0u);
  EXPECT_EQ(CountWholeFrames(std::string_view(wire).substr(0, wire.size() - 1)), std::nullopt);
  EXPECT_EQ(CountWholeFrames(std::string_view(wire).substr(0, 5)), std::nullopt);
}

// One byte of a valid frame changed, and the refusal it must cause.
struct Corruption {
  size_t offset;
  char value;
  const char* message;
};

TEST(FrameTest, RefusesBadVersionFlagsAndChecksumWithAPreciseReason) {
  std::string good;
  AppendFrame(&good, 16, "payload");
  for (const Corruption& corruption : {
           Corruption{0, 2, "frame of protocol version 2; this member speaks 1"},
           Corruption{2, 1, "frame of type 16 with unknown flags 0x0001"},
           Corruption{3, 1, "frame of type 16 with unknown flags 0x0100"},
           Corruption{12, 'P', "frame of type 16 with 7 payload bytes fails its checksum"},
           Corruption{9, 0, "fails its checksum"},
           Corruption{1, 17, "frame of type 17 with 7 payload bytes fails its checksum"},
       }) {
    std::string bad = good;
    bad[corruption.offset] = corruption.value;
    FrameDecoder decoder;
    decoder.Feed(bad.data(), bad.size());
    Frame frame;
    ASSERT_EQ(decoder.Next(&frame), FrameDecoder::Result::kError) << corruption.offset;
    EXPECT_NE(std::string(decoder.error().message()).find(corruption.message), std::string::npos)
        << decoder.error();
    // The error is final.
    decoder.Feed(good.data(), good.size());
    EXPECT_EQ(decoder.Next(&frame), FrameDecoder::Result::kError);
  }
}

TEST(FrameTest, RefusesAnOversizedFrameFromItsHeaderAlone) {
  std::string huge;
  AppendFrame(&huge, 16, std::string(2000, 'x'));
  FrameDecoder decoder(1024);
  decoder.Feed(huge.data(), kFrameHeaderBytes);
  Frame frame;
  ASSERT_EQ(decoder.Next(&frame), FrameDecoder::Result::kError);
  EXPECT_EQ(decoder.error().message(),
            "frame of type 16 announces 2000 payload bytes; the limit is 1024");

  FrameDecoder exact(2000);
  exact.Feed(huge.data(), huge.size());
  EXPECT_EQ(exact.Next(&frame), FrameDecoder::Result::kFrame);
}

TEST(FrameTest, AnnouncedLengthCostsNothingUntilTheBytesArrive) {
  // A header announcing 600 MiB: the decoder waits, holding only what arrived.
  std::string header(kFrameHeaderBytes, '\0');
  header[0] = static_cast<char>(kProtocolVersion);
  header[1] = 16;
  const uint32_t length = kFramePayloadMax;
  for (int i = 0; i < 4; ++i) {
    header[4 + i] = static_cast<char>(length >> (8 * i));
  }
  FrameDecoder decoder;
  decoder.Feed(header.data(), header.size());
  Frame frame;
  EXPECT_EQ(decoder.Next(&frame), FrameDecoder::Result::kNeedMore);
  EXPECT_EQ(decoder.buffered_bytes(), kFrameHeaderBytes);
  EXPECT_LE(decoder.capacity_bytes(), 64u * 1024);
  const std::string some(100'000, 'y');
  decoder.Feed(some.data(), some.size());
  EXPECT_EQ(decoder.Next(&frame), FrameDecoder::Result::kNeedMore);
  EXPECT_LE(decoder.capacity_bytes(), 4 * (kFrameHeaderBytes + some.size()));
}

TEST(FrameTest, SixteenMebibytePayloadsSurviveSmallReads) {
  std::string payload(16 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>(i * 131 + (i >> 13));
  }
  std::string wire;
  AppendFrame(&wire, 20, payload);
  AppendFrame(&wire, 21, payload);
  FrameDecoder decoder;
  size_t frames = 0;
  // Read-sized pieces through the zero-copy path, as a connection does.
  for (size_t offset = 0; offset < wire.size();) {
    const std::span<char> space = decoder.PrepareAppend(64 * 1024);
    const size_t bytes = std::min(space.size(), std::min<size_t>(wire.size() - offset, 100'000));
    std::memcpy(space.data(), wire.data() + offset, bytes);
    decoder.CommitAppend(bytes);
    offset += bytes;
    Frame frame;
    while (decoder.Next(&frame) == FrameDecoder::Result::kFrame) {
      EXPECT_EQ(frame.type, 20 + frames);
      EXPECT_TRUE(frame.payload == payload);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 2u);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_LE(decoder.capacity_bytes(), 4 * ((16u << 20) + kFrameHeaderBytes + 64 * 1024));
  // Drained, the decoder gives the big buffer back on its next read.
  decoder.PrepareAppend(64 * 1024);
  EXPECT_LE(decoder.capacity_bytes(), 4u << 20);
}

TEST(FrameTest, ManySmallFramesKeepTheBufferSmall) {
  // Consumed bytes are reclaimed: a long stream never grows the buffer past a few reads.
  std::string wire;
  for (int i = 0; i < 1000; ++i) {
    AppendFrame(&wire, 16, std::string(i % 97, 'z'));
  }
  FrameDecoder decoder;
  size_t frames = 0;
  for (int round = 0; round < 50; ++round) {
    for (size_t offset = 0; offset < wire.size(); offset += 1000) {
      decoder.Feed(wire.data() + offset, std::min<size_t>(1000, wire.size() - offset));
      Frame frame;
      while (decoder.Next(&frame) == FrameDecoder::Result::kFrame) {
        ++frames;
      }
    }
  }
  EXPECT_EQ(frames, 50'000u);
  EXPECT_LE(decoder.capacity_bytes(), 8u * 1024);
}

}  // namespace
}  // namespace weft::transport
