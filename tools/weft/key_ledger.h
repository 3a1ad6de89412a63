// What the write load wrote, so that a checker can later read every key back from every member
// and compare (the demo's "no acknowledged write lost", DESIGN.md §10).
//
// Every key has exactly one writer: connection c owns a contiguous range of key indices, so the
// order of its acknowledgements is the order of the writes to each of its keys. A value names
// its writer and the writer's counter ("c3:n1234:" then filler), so it is unique and traceable.
//
// For each key the ledger holds the last write the server acknowledged and the writes whose
// outcome is unknown ("in doubt": the connection broke or the reply never came, or the server
// answered with an error other than LOADING). Those may or may not have been applied, and one
// sent before a later acknowledged write may even be applied after it (the old connection's
// request can still be in the server's buffer), so a checker must accept any of them.
//
// Memory: 8 bytes per owned key (values are regenerated from the counter, never stored), plus
// the in-doubt writes, at most kInDoubtMax per ledger; past that a key is marked as
// unverifiable (any value accepted, and counted).
//
// Thread safety: a KeyLedger is not thread-safe; its connection writes it, readers read it only
// after that connection has stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace weft::tools {

// prefix followed by the decimal index ("weft:load:42").
std::string LoadKey(std::string_view prefix, int64_t index);

// The value connection `connection` writes with its counter `counter`: "c<connection>:n<counter>:"
// followed by filler up to `value_bytes` (never shorter than the tag itself).
std::string LoadValue(int connection, uint64_t counter, int value_bytes);

// The (connection, counter) a LoadValue names; nullopt if `value` is not one.
std::optional<std::pair<int, uint64_t>> ParseLoadValue(std::string_view value);

// What a member may hold for one key after the load.
struct KeyExpectation {
  std::string key;
  // The last acknowledged write's value; nullopt if it was a DEL or no write to the key was
  // acknowledged (the key must then be absent, the load's keys being fresh).
  std::optional<std::string> value;
  // Writes whose outcome is unknown; nullopt entries are DELs.
  std::vector<std::optional<std::string>> in_doubt;
  // Too many writes in doubt were recorded to keep them all: any value is accepted.
  bool unverifiable = false;

  // True if a member holding `observed` (nullopt: key absent) is consistent with the load.
  bool Accepts(const std::optional<std::string>& observed) const;
};

using ExpectationVisitor = std::function<void(const KeyExpectation&)>;

class KeyLedger {
 public:
  static constexpr size_t kInDoubtMax = 1 << 20;

  // One write: the connection's counter for it, and whether it was a DEL.
  struct Write {
    uint64_t counter = 0;
    bool is_delete = false;
  };

  // The ledger of connection `connection`, which writes the keys with indices in
  // [key_begin, key_end). REQUIRES: key_begin <= key_end.
  KeyLedger(int connection, int64_t key_begin, int64_t key_end);

  // REQUIRES (for both): key_begin <= key_index < key_end, write.counter > 0, and
  // acknowledgements of one key arrive in the order of the writes.
  void Acknowledged(int64_t key_index, Write write);
  void InDoubt(int64_t key_index, Write write);

  // Visits the expectation of every key that was written (acknowledged or in doubt), in key
  // order. Keys and values are built with `prefix` and `value_bytes` as the load built them.
  void ForEach(std::string_view prefix, int value_bytes, const ExpectationVisitor& visit) const;

  int64_t key_begin() const { return key_begin_; }
  int64_t key_end() const { return key_end_; }
  // Keys that have at least one write in doubt (or are unverifiable).
  int64_t keys_in_doubt() const {
    return static_cast<int64_t>(in_doubt_.size() + unverifiable_.size());
  }
  int64_t keys_unverifiable() const { return static_cast<int64_t>(unverifiable_.size()); }

 private:
  // A write packed as counter << 1 | is_delete; 0 means "none".
  static uint64_t Pack(Write write) { return write.counter << 1 | (write.is_delete ? 1 : 0); }
  std::optional<std::string> ValueOf(uint64_t packed, int value_bytes) const;

  const int connection_;
  const int64_t key_begin_;
  const int64_t key_end_;
  std::vector<uint64_t> acknowledged_;  // indexed by key_index - key_begin_
  absl::flat_hash_map<int64_t, std::vector<uint64_t>> in_doubt_;
  size_t in_doubt_writes_ = 0;
  absl::flat_hash_set<int64_t> unverifiable_;
};

}  // namespace weft::tools
