// Helpers shared by peer_link.cc and peer_listener.cc; not part of the transport's interface.
#pragma once

#include <string>

#include <asio.hpp>

namespace weft::transport {

// "1.2.3.4:5" or "[::1]:5", for log lines and remote_address().
std::string DescribeEndpoint(const asio::ip::tcp::endpoint& endpoint);

}  // namespace weft::transport
