#include "weft/replication/write_ticket.h"

#include "weft/base/check.h"

namespace weft::replication {
namespace {

thread_local std::shared_ptr<WriteTicket> current_ticket;

}  // namespace

ScopedWriteTicket::ScopedWriteTicket(std::shared_ptr<WriteTicket> ticket) {
  WEFT_DCHECK(current_ticket == nullptr);
  current_ticket = std::move(ticket);
}

ScopedWriteTicket::~ScopedWriteTicket() {
  current_ticket.reset();
}

const std::shared_ptr<WriteTicket>* ScopedWriteTicket::Current() {
  return current_ticket ? &current_ticket : nullptr;
}

}  // namespace weft::replication
