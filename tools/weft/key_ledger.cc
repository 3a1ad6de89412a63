#include "tools/weft/key_ledger.h"

#include <algorithm>
#include <charconv>

#include "weft/base/check.h"
#include "weft/base/strings.h"

namespace weft::tools {

std::string LoadKey(std::string_view prefix, int64_t index) {
  return StrCat(prefix, index);
}

std::string LoadValue(int connection, uint64_t counter, int value_bytes) {
  std::string value = StrCat("c", connection, ":n", counter, ":");
  // Filler that varies with the counter, so values are not one repeated byte (which some
  // transports or stores might compress and so measure the wrong thing).
  const size_t size = std::max<size_t>(value.size(), static_cast<size_t>(std::max(value_bytes, 0)));
  for (size_t i = value.size(); i < size; ++i)
    value.push_back(static_cast<char>('a' + (counter + i) % 26));
  return value;
}

std::optional<std::pair<int, uint64_t>> ParseLoadValue(std::string_view value) {
  if (!value.starts_with('c'))
    return std::nullopt;
  const char* position = value.data() + 1;
  const char* const end = value.data() + value.size();
  int connection = 0;
  auto parsed = std::from_chars(position, end, connection);
  if (parsed.ec != std::errc() || end - parsed.ptr < 2 || parsed.ptr[0] != ':' ||
      parsed.ptr[1] != 'n') {
    return std::nullopt;
  }
  uint64_t counter = 0;
  parsed = std::from_chars(parsed.ptr + 2, end, counter);
  if (parsed.ec != std::errc() || parsed.ptr == end || *parsed.ptr != ':')
    return std::nullopt;
  return std::make_pair(connection, counter);
}

bool KeyExpectation::Accepts(const std::optional<std::string>& observed) const {
  if (unverifiable || observed == value)
    return true;
  return std::find(in_doubt.begin(), in_doubt.end(), observed) != in_doubt.end();
}

KeyLedger::KeyLedger(int connection, int64_t key_begin, int64_t key_end)
    : connection_(connection),
      key_begin_(key_begin),
      key_end_(key_end),
      acknowledged_(static_cast<size_t>(key_end - key_begin), 0) {
  WEFT_CHECK(key_begin <= key_end);
}

void KeyLedger::Acknowledged(int64_t key_index, Write write) {
  WEFT_DCHECK(key_index >= key_begin_ && key_index < key_end_ && write.counter > 0);
  uint64_t& slot = acknowledged_[static_cast<size_t>(key_index - key_begin_)];
  WEFT_DCHECK(Pack(write) > slot);
  slot = Pack(write);
}

void KeyLedger::InDoubt(int64_t key_index, Write write) {
  WEFT_DCHECK(key_index >= key_begin_ && key_index < key_end_ && write.counter > 0);
  if (unverifiable_.contains(key_index))
    return;
  if (in_doubt_writes_ >= kInDoubtMax) {
    in_doubt_.erase(key_index);
    unverifiable_.insert(key_index);
    return;
  }
  in_doubt_[key_index].push_back(Pack(write));
  ++in_doubt_writes_;
}

std::optional<std::string> KeyLedger::ValueOf(uint64_t packed, int value_bytes) const {
  if (packed == 0 || (packed & 1) != 0)
    return std::nullopt;
  return LoadValue(connection_, packed >> 1, value_bytes);
}

void KeyLedger::ForEach(std::string_view prefix, int value_bytes,
                        const ExpectationVisitor& visit) const {
  KeyExpectation expectation;
  for (int64_t index = key_begin_; index < key_end_; ++index) {
    const uint64_t acknowledged = acknowledged_[static_cast<size_t>(index - key_begin_)];
    const auto doubt = in_doubt_.find(index);
    const bool unverifiable = unverifiable_.contains(index);
    if (acknowledged == 0 && doubt == in_doubt_.end() && !unverifiable)
      continue;
    expectation.key = LoadKey(prefix, index);
    expectation.value = ValueOf(acknowledged, value_bytes);
    expectation.in_doubt.clear();
    if (doubt != in_doubt_.end()) {
      for (uint64_t packed : doubt->second) {
        expectation.in_doubt.push_back(packed & 1 ? std::nullopt : ValueOf(packed, value_bytes));
      }
    }
    expectation.unverifiable = unverifiable;
    visit(expectation);
  }
}

}  // namespace weft::tools
