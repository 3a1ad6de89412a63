// Where EtcdRegistry keeps things in etcd, and how a member is written there
// (docs/design/membership.md has the same table).
//
//   /weft/<cluster>/members/<member id, 16 hex>            = {"member_id":..,"name":..,
//                                                             "peer_address":..,
//                                                             "client_address":..}
//   /weft/<cluster>/regions/<region>/<member id, 16 hex>   = the same plus "state"
//
// Both keys of a member are attached to its lease, so they vanish together when it expires.
// Member ids are fixed-width lower-case hex, so etcd's byte order of the keys is the numeric
// order of the ids.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "weft/base/status.h"
#include "weft/membership/registry.h"

namespace weft::membership::etcd_layout {

// Cluster names follow the rules of region names (ValidateRegionName).
Status ValidateClusterName(std::string_view cluster);

std::string MemberKey(std::string_view cluster, uint64_t member_id);
// "/weft/<cluster>/regions/<region>/": every key of the region's group starts with it.
std::string RegionPrefix(std::string_view cluster, std::string_view region);
std::string RegionMemberKey(std::string_view cluster, std::string_view region, uint64_t member_id);
// The region's holders (registry.h), one key per member, without a lease:
// /weft/<cluster>/holders/<region>/<id:016x>.
std::string HoldersPrefix(std::string_view cluster, std::string_view region);
std::string HolderKey(std::string_view cluster, std::string_view region, uint64_t member_id);
// The range end that covers exactly the keys starting with `prefix` (etcd's "prefix end").
// REQUIRES: prefix holds a byte other than 0xff.
std::string PrefixEnd(std::string_view prefix);

// 16 hex digits → id; nullopt for anything else (including 0).
std::optional<uint64_t> ParseMemberId(std::string_view text);

// The JSON value of a member key (no state) or region key (with state).
std::string EncodeMember(const MemberInfo& info, std::optional<MemberState> state);
// Reads a region key's value. InvalidArgument if it is not what EncodeMember writes with a
// state.
StatusOr<GroupMember> DecodeRegionMember(std::string_view value);

}  // namespace weft::membership::etcd_layout
