// The replication protocol's messages and their encodings (docs/design/peer-protocol.md,
// "Replication messages"). Pure functions over bytes: no I/O.
//
// Two kinds of connection carry them, both framed by transport/frame.h:
//  - a lane (one per (region, sender, receiver, lane)): the sender opens it with ChannelOpen and
//    sends LaneItems frames, each a run of records numbered by the lane's sequence (the
//    transmission counter); the receiver answers ChannelResume once and then Acks carrying its
//    reception counter. Records are changes and the join protocol's control messages, so the
//    markers travel in FIFO order with the changes they delimit, and everything on a lane is
//    retransmitted after a reconnect and deduplicated by sequence.
//  - an image connection (joiner N to provider P): ImageRequest, then ImageChunk frames paced by
//    ImageCredit, closed by ImageDone.
//
// Decoded messages hold string_views into the frame payload they came from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/base/status.h"
#include "weft/storage/entry.h"
#include "weft/storage/version.h"

namespace weft::replication {

// Frame types; the transport reserves 0..15.
enum class FrameType : uint8_t {
  kChannelOpen = 16,
  kChannelResume = 17,
  kLaneItems = 18,
  kAck = 19,
  kImageRequest = 20,
  kImageChunk = 21,
  kImageCredit = 22,
  kImageDone = 23,
  kImageRefused = 24,
  // Lane, sender -> receiver, when the lane has been idle for a while: proves the path is alive
  // in both directions (the receiver answers with an Ack), so a silent partition is noticed in
  // seconds rather than by TCP's timeouts.
  kHeartbeat = 25,
};
inline constexpr uint8_t kFrameTypeFirst = 16;
inline constexpr uint8_t kFrameTypeLast = 25;

// Records inside a LaneItems frame.
enum class RecordKind : uint8_t {
  kChange = 1,
  kJoinIntent = 2,    // N -> each ACTIVE member: add me as a recipient, report to provider
  kIntentAck = 3,     // M -> N: done (N is a recipient, markers sent)
  kStateMarker = 4,   // M -> P: my transmission counters toward you when N became a recipient
  kStabilized = 5,    // P -> N: everything before the cut is applied here; ask for the image
  kJoinComplete = 6,  // N -> every ACTIVE member: I am ACTIVE; flush every lane to me
  kJoinFlush = 7,     // M -> N on every lane: no change the image could have carried follows
  kJoinReleased = 8,  // N -> every member: my join is over; stop sending me pre-images
  // M -> each member on every lane: my repairs of a departed origin are sent, and I hold none
  // of its entries that entered at or before `revision` (the claim; see RepairQuery).
  kRepairDone = 9,
  // N -> M: a joiner waits for M's repair of `member`'s entry `revision`; M answers with
  // RepairDone on every lane (its claim), which may fall short if it still holds that entry.
  kRepairQuery = 10,
};

// One change to one key: the post-image (value + expiry, or a tombstone) with its version, and
// for an INITIALIZING receiver the pre-image (the sender's live value before the change).
struct ChangeRecord {
  storage::EntryView post;
  bool has_pre = false;      // the sender shipped a pre-image
  bool pre_present = false;  // ... and the key had a live value
  std::string_view pre_value;
};

struct ControlRecord {
  uint64_t join_id = 0;
  // JoinIntent: provider; StateMarker: joiner; RepairDone: the departed origin.
  uint64_t member = 0;
  int64_t revision = 0;            // JoinIntent: registry revision of the joiner's entry
  int64_t view_revision = 0;       // JoinIntent: revision of the view `members` comes from
  std::vector<uint64_t> members;   // JoinIntent: the ACTIVE members N told
  std::vector<uint64_t> counters;  // StateMarker: sent[M->P, lane] per lane
  std::vector<uint64_t> streams;   // StateMarker: the stream id of each lane M->P
  std::string error;               // IntentAck: why the member could not mark (empty: ok)
  // JoinIntent: how to reach the joiner, in case a member's registry view lags behind.
  std::string name;
  std::string peer_address;
  std::string client_address;
};

struct Record {
  RecordKind kind = RecordKind::kChange;
  uint64_t seq = 0;  // position on the lane (1, 2, 3, ...)
  ChangeRecord change;
  ControlRecord control;
};

// --- record bodies (what an outbox keeps; the lane adds kind and seq when it sends) ---

// The body of a change record. `pre` is the live pre-image or null; with_pre says whether the
// receiver wants it (INITIALIZING).
void EncodeChangeBody(std::string* out, const storage::EntryView& post,
                      const storage::EntryView* pre, bool with_pre);
void EncodeControlBody(std::string* out, const ControlRecord& control);

// Appends one complete record (kind, seq, body) to a LaneItems payload.
void AppendRecord(std::string* payload, RecordKind kind, uint64_t seq, std::string_view body);

// Reads the records of a LaneItems payload one at a time.
class RecordReader {
 public:
  explicit RecordReader(std::string_view payload) : payload_(payload) {}
  // Returns false at the end of the payload; a malformed record yields an error.
  StatusOr<bool> Next(Record* record);

 private:
  std::string_view payload_;
};

// --- lane connection control frames ---

struct ChannelOpen {
  std::string_view region;
  uint64_t from = 0;  // sender member id
  uint64_t to = 0;    // receiver member id (refused if it is not the acceptor)
  uint32_t lane = 0;
  uint32_t lanes = 0;  // the sender's lane count (must match the receiver's)
  // The sender's stream on this lane: a new one (a lane re-created for the same member) starts
  // its numbering at 1 again, and streams of one sender and lane only grow.
  uint64_t stream_id = 0;
  // The sender's entry in the region's group (GroupMember::entered_at) when it made the stream.
  // A receiver that has removed that entry refuses the stream: a member dropped from the group
  // that does not know it yet must not deliver writes its group has already settled without it.
  int64_t sender_entry = 0;
};
std::string EncodeChannelOpen(const ChannelOpen& open);
StatusOr<ChannelOpen> DecodeChannelOpen(std::string_view payload);

// ChannelResume and Ack carry the receiver's reception counter.
std::string EncodeCounter(uint64_t value);
StatusOr<uint64_t> DecodeCounter(std::string_view payload);

// --- image connection ---

struct ImageRequest {
  std::string_view region;
  uint64_t joiner = 0;
  uint64_t join_id = 0;
  uint64_t credit_bytes = 0;
};
std::string EncodeImageRequest(const ImageRequest& request);
StatusOr<ImageRequest> DecodeImageRequest(std::string_view payload);

// An image chunk is the provider's estimate of the image's entry count (for the joiner's
// progress and ETA), then a run of entries (tombstones included).
void BeginImageChunk(std::string* payload, uint64_t entries_estimate);
struct ImageChunk {
  uint64_t entries_estimate = 0;
  std::string_view entries;  // read with ImageEntryReader
};
StatusOr<ImageChunk> DecodeImageChunk(std::string_view payload);
void AppendImageEntry(std::string* payload, const storage::EntryView& entry);
class ImageEntryReader {
 public:
  explicit ImageEntryReader(std::string_view payload) : payload_(payload) {}
  StatusOr<bool> Next(storage::EntryView* entry);

 private:
  std::string_view payload_;
};

struct ImageDone {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};
std::string EncodeImageDone(const ImageDone& done);
StatusOr<ImageDone> DecodeImageDone(std::string_view payload);

}  // namespace weft::replication
