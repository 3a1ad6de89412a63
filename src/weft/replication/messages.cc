#include "weft/replication/messages.h"

#include "weft/base/strings.h"
#include "weft/replication/wire.h"

namespace weft::replication {
namespace {

constexpr uint8_t kEntryTombstone = 1 << 0;
constexpr uint8_t kEntryHasPre = 1 << 1;
constexpr uint8_t kEntryPrePresent = 1 << 2;
constexpr uint8_t kEntryFlagsKnown = kEntryTombstone | kEntryHasPre | kEntryPrePresent;

// key, flags, value (live only), expiry, version: the common prefix of a change and an image
// entry. Returns nothing; the caller appends its own tail.
void EncodeEntry(ByteWriter& writer, const storage::EntryView& entry, uint8_t extra_flags) {
  writer.Bytes(entry.key);
  writer.U8(static_cast<uint8_t>((entry.tombstone ? kEntryTombstone : 0) | extra_flags));
  if (!entry.tombstone) {
    writer.Bytes(entry.value);
    writer.Varint(static_cast<uint64_t>(entry.expire_at_unix_ms));
  }
  writer.U64(entry.version.stamp);
  writer.U64(entry.version.origin);
  writer.Varint(entry.version.seq);
}

uint8_t DecodeEntry(ByteReader& reader, storage::EntryView* entry) {
  entry->key = reader.Bytes();
  const uint8_t flags = reader.U8();
  if ((flags & ~kEntryFlagsKnown) != 0) {
    reader.Fail();
  }
  entry->tombstone = (flags & kEntryTombstone) != 0;
  entry->value = {};
  entry->expire_at_unix_ms = 0;
  if (!entry->tombstone) {
    entry->value = reader.Bytes();
    const uint64_t expire = reader.Varint();
    if (expire > static_cast<uint64_t>(INT64_MAX)) {
      reader.Fail();
    }
    entry->expire_at_unix_ms = static_cast<int64_t>(expire);
  }
  entry->version.stamp = reader.U64();
  entry->version.origin = reader.U64();
  entry->version.seq = reader.Varint();
  return flags;
}

Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(StrCat("malformed ", what));
}

void EncodeIds(ByteWriter& writer, const std::vector<uint64_t>& ids) {
  writer.Varint(ids.size());
  for (uint64_t id : ids) {
    writer.U64(id);
  }
}

std::vector<uint64_t> DecodeIds(ByteReader& reader) {
  const uint64_t count = reader.Varint();
  std::vector<uint64_t> ids;
  if (count > reader.remaining() / 8) {
    reader.Fail();
    return ids;
  }
  ids.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    ids.push_back(reader.U64());
  }
  return ids;
}

}  // namespace

void EncodeChangeBody(std::string* out, const storage::EntryView& post,
                      const storage::EntryView* pre, bool with_pre) {
  ByteWriter writer(out);
  uint8_t flags = 0;
  if (with_pre) {
    flags |= kEntryHasPre;
    if (pre != nullptr) {
      flags |= kEntryPrePresent;
    }
  }
  EncodeEntry(writer, post, flags);
  if (with_pre && pre != nullptr) {
    writer.Bytes(pre->value);
  }
}

void EncodeControlBody(std::string* out, const ControlRecord& control) {
  ByteWriter writer(out);
  writer.U64(control.join_id);
  writer.U64(control.member);
  writer.U64(static_cast<uint64_t>(control.revision));
  writer.U64(static_cast<uint64_t>(control.view_revision));
  EncodeIds(writer, control.members);
  EncodeIds(writer, control.counters);
  EncodeIds(writer, control.streams);
  writer.Bytes(control.error);
  writer.Bytes(control.name);
  writer.Bytes(control.peer_address);
  writer.Bytes(control.client_address);
}

void AppendRecord(std::string* payload, RecordKind kind, uint64_t seq, std::string_view body) {
  ByteWriter writer(payload);
  writer.U8(static_cast<uint8_t>(kind));
  writer.Varint(seq);
  payload->append(body.data(), body.size());
}

StatusOr<bool> RecordReader::Next(Record* record) {
  if (payload_.empty()) {
    return false;
  }
  ByteReader reader(payload_);
  const uint8_t kind = reader.U8();
  record->seq = reader.Varint();
  if (kind < static_cast<uint8_t>(RecordKind::kChange) ||
      kind > static_cast<uint8_t>(RecordKind::kRepairQuery)) {
    return Malformed(StrCat("lane record (kind ", kind, ")"));
  }
  record->kind = static_cast<RecordKind>(kind);
  if (record->kind == RecordKind::kChange) {
    ChangeRecord& change = record->change;
    const uint8_t flags = DecodeEntry(reader, &change.post);
    change.has_pre = (flags & kEntryHasPre) != 0;
    change.pre_present = (flags & kEntryPrePresent) != 0;
    change.pre_value = change.pre_present ? reader.Bytes() : std::string_view();
    if (change.pre_present && !change.has_pre) {
      reader.Fail();
    }
  } else {
    ControlRecord& control = record->control;
    control.join_id = reader.U64();
    control.member = reader.U64();
    control.revision = static_cast<int64_t>(reader.U64());
    control.view_revision = static_cast<int64_t>(reader.U64());
    control.members = DecodeIds(reader);
    control.counters = DecodeIds(reader);
    control.streams = DecodeIds(reader);
    control.error = std::string(reader.Bytes());
    control.name = std::string(reader.Bytes());
    control.peer_address = std::string(reader.Bytes());
    control.client_address = std::string(reader.Bytes());
  }
  if (!reader.ok() || record->seq == 0) {
    return Malformed("lane record");
  }
  payload_.remove_prefix(payload_.size() - reader.remaining());
  return true;
}

std::string EncodeChannelOpen(const ChannelOpen& open) {
  std::string out;
  ByteWriter writer(&out);
  writer.Bytes(open.region);
  writer.U64(open.from);
  writer.U64(open.to);
  writer.Varint(open.lane);
  writer.Varint(open.lanes);
  writer.U64(open.stream_id);
  writer.U64(static_cast<uint64_t>(open.sender_entry));
  return out;
}

StatusOr<ChannelOpen> DecodeChannelOpen(std::string_view payload) {
  ByteReader reader(payload);
  ChannelOpen open;
  open.region = reader.Bytes();
  open.from = reader.U64();
  open.to = reader.U64();
  const uint64_t lane = reader.Varint();
  const uint64_t lanes = reader.Varint();
  open.stream_id = reader.U64();
  open.sender_entry = static_cast<int64_t>(reader.U64());
  if (!reader.ok() || !reader.empty() || lanes == 0 || lanes > 256 || lane >= lanes ||
      open.stream_id == 0 || open.sender_entry <= 0) {
    return Malformed("ChannelOpen");
  }
  open.lane = static_cast<uint32_t>(lane);
  open.lanes = static_cast<uint32_t>(lanes);
  return open;
}

std::string EncodeCounter(uint64_t value) {
  std::string out;
  ByteWriter(&out).U64(value);
  return out;
}

StatusOr<uint64_t> DecodeCounter(std::string_view payload) {
  ByteReader reader(payload);
  const uint64_t value = reader.U64();
  if (!reader.ok() || !reader.empty()) {
    return Malformed("counter");
  }
  return value;
}

std::string EncodeImageRequest(const ImageRequest& request) {
  std::string out;
  ByteWriter writer(&out);
  writer.Bytes(request.region);
  writer.U64(request.joiner);
  writer.U64(request.join_id);
  writer.U64(request.credit_bytes);
  return out;
}

StatusOr<ImageRequest> DecodeImageRequest(std::string_view payload) {
  ByteReader reader(payload);
  ImageRequest request;
  request.region = reader.Bytes();
  request.joiner = reader.U64();
  request.join_id = reader.U64();
  request.credit_bytes = reader.U64();
  if (!reader.ok() || !reader.empty()) {
    return Malformed("ImageRequest");
  }
  return request;
}

void BeginImageChunk(std::string* payload, uint64_t entries_estimate) {
  ByteWriter(payload).Varint(entries_estimate);
}

StatusOr<ImageChunk> DecodeImageChunk(std::string_view payload) {
  ByteReader reader(payload);
  ImageChunk chunk;
  chunk.entries_estimate = reader.Varint();
  if (!reader.ok()) {
    return Malformed("ImageChunk");
  }
  chunk.entries = payload.substr(payload.size() - reader.remaining());
  return chunk;
}

void AppendImageEntry(std::string* payload, const storage::EntryView& entry) {
  ByteWriter writer(payload);
  EncodeEntry(writer, entry, 0);
}

StatusOr<bool> ImageEntryReader::Next(storage::EntryView* entry) {
  if (payload_.empty()) {
    return false;
  }
  ByteReader reader(payload_);
  const uint8_t flags = DecodeEntry(reader, entry);
  if (!reader.ok() || (flags & ~kEntryTombstone) != 0) {
    return Malformed("image entry");
  }
  payload_.remove_prefix(payload_.size() - reader.remaining());
  return true;
}

std::string EncodeImageDone(const ImageDone& done) {
  std::string out;
  ByteWriter writer(&out);
  writer.U64(done.entries);
  writer.U64(done.bytes);
  return out;
}

StatusOr<ImageDone> DecodeImageDone(std::string_view payload) {
  ByteReader reader(payload);
  ImageDone done;
  done.entries = reader.U64();
  done.bytes = reader.U64();
  if (!reader.ok() || !reader.empty()) {
    return Malformed("ImageDone");
  }
  return done;
}

}  // namespace weft::replication
