#include "tests/sim/event_loop.h"

#include <algorithm>
#include <cstdio>

namespace weft::sim {
namespace {

uint64_t Mix(uint64_t hash, uint64_t value) {
  // splitmix64 over the running hash: cheap, and order-sensitive.
  uint64_t z = hash ^ (value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t HashLabel(std::string_view label) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (char c : label) {
    hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
  }
  return hash;
}

}  // namespace

void EventLoop::At(int64_t delay_us, uint64_t owner, std::string_view label,
                   std::function<void()> fn) {
  if (owner != 0 && cancelled_.contains(owner)) {
    return;
  }
  queue_.push(
      Event{now_us_ + std::max<int64_t>(0, delay_us), next_seq_++, owner, label, std::move(fn)});
}

void EventLoop::Cancel(uint64_t owner) {
  cancelled_.insert(owner);
}

void EventLoop::Stall(uint64_t owner, int64_t until_us) {
  int64_t& until = stalled_until_us_[owner];
  until = std::max(until, until_us);
}

int64_t EventLoop::StalledUntil(uint64_t owner) const {
  auto it = stalled_until_us_.find(owner);
  return it == stalled_until_us_.end() ? 0 : it->second;
}

bool EventLoop::Step(int64_t until_us) {
  while (!queue_.empty()) {
    if (queue_.top().time_us > until_us) {
      return false;
    }
    // priority_queue::top is const; the event is moved out before it is popped.
    Event event = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    if (event.owner != 0 && cancelled_.contains(event.owner)) {
      continue;
    }
    if (const int64_t stalled = StalledUntil(event.owner); stalled > event.time_us) {
      event.time_us = stalled;
      event.seq = next_seq_++;
      queue_.push(std::move(event));
      continue;
    }
    now_us_ = event.time_us;
    ++events_run_;
    trace_hash_ = Mix(Mix(Mix(trace_hash_, static_cast<uint64_t>(event.time_us)), event.owner),
                      HashLabel(event.label));
    if (verbose_) {
      std::fprintf(stderr, "%10.6f %016llx %.*s\n", static_cast<double>(event.time_us) / 1e6,
                   static_cast<unsigned long long>(event.owner),
                   static_cast<int>(event.label.size()), event.label.data());
    }
    event.fn();
    return true;
  }
  return false;
}

void EventLoop::RunUntil(int64_t until_us) {
  while (Step(until_us)) {
  }
  if (now_us_ < until_us) {
    now_us_ = until_us;
  }
}

void EventLoop::Fold(uint64_t value) {
  trace_hash_ = Mix(trace_hash_, value);
}

int64_t SimClock::NowMonotonicUs() const {
  return static_cast<int64_t>(static_cast<double>(loop_.now_us()) * (1.0 + drift_));
}

int64_t SimClock::NowUnixMs() const {
  return kEpochUnixMs + skew_ms_ + NowMonotonicUs() / 1000;
}

}  // namespace weft::sim
