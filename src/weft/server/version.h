// What weft reports about itself.
#pragma once

#include <string_view>

namespace weft::server {

inline constexpr std::string_view kWeftVersion = "0.1.0";
// The Redis release whose command semantics weft follows; clients that gate features on
// `redis_version` (INFO) or HELLO's `version` read this.
inline constexpr std::string_view kRedisCompatibleVersion = "7.0.15";

}  // namespace weft::server
