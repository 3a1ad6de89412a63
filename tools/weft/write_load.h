// WriteLoad: a bounded SET/DEL load against one or more members, measured the way the demo
// needs it (DESIGN.md §11: writers' latency, stalls and throughput before, during and after a
// join) and remembered so that a checker can verify every acknowledged write afterwards.
//
// Shape of the load:
//   - members.size() * connections_per_member connections, one thread each; connection i
//     talks to members[i / connections_per_member].
//   - Open loop (rate_ops_per_s > 0): each connection's requests fall due at fixed intervals
//     (the total rate split evenly; connections' schedules are staggered). A request is sent
//     when it is due and the connection has fewer than pipeline_depth requests outstanding;
//     otherwise it waits, and its latency still counts from when it was due (coordinated
//     omission corrected, see load_report.h). Closed loop (rate 0): each connection keeps
//     pipeline_depth requests outstanding.
//   - Each connection owns a contiguous slice of the key space and picks keys uniformly (seeded)
//     from it, so every key has one writer (key_ledger.h). SET with a value that names the
//     connection and its counter; a delete_fraction of requests are DELs.
//   - Bounded twice, always: no request is sent after duration_ms, and at most ops_max requests
//     are sent in total. After sending ends, outstanding replies are awaited for at most
//     reply_timeout_ms.
//   - Server errors (-LOADING, -ERR ...) and connection failures are counted, never fatal. A
//     connection that breaks, or whose oldest request waits longer than reply_timeout_ms, is
//     closed and reconnected with exponential backoff (reconnect_backoff_ms_min .. _max).
//
// Typical use (the demo):
//   WriteLoad load(config, clock);
//   WEFT_RETURN_IF_ERROR(load.Start());            // phase config.first_phase ("before")
//   ... wait; load.MarkPhase("during"); start the join; wait for it; load.MarkPhase("after");
//
// A request's latency and a stall belong to the phase in which they began (load_report.h), so
// start the event a little (say 50 ms, well above the requests' latency) after marking its
// phase: requests in flight at the mark are then answered before the event can delay them, and
// the previous phase stays a clean baseline.
//   load.WaitFinished(timeout_ms);                 // or load.Stop()
//   LoadReport report = load.Report();
//   VerifyMember(member, load) for every member    (load_verifier.h)
//
// Thread safety: Start, MarkPhase, Progress, WaitFinished and Stop may be called from any
// thread. Report, ForEachExpectation and AcknowledgedLastValues require the load to be
// finished (WaitFinished returned true, or Stop returned).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/clock.h"
#include "weft/base/mutex.h"
#include "weft/base/status.h"

#include "tools/weft/key_ledger.h"
#include "tools/weft/load_recorder.h"
#include "tools/weft/load_report.h"
#include "tools/weft/resp_client.h"

namespace weft::tools {

struct WriteLoadConfig {
  std::vector<HostPort> members;
  int connections_per_member = 4;
  // Total target rate over all connections; 0 = closed loop.
  double rate_ops_per_s = 0;
  // Requests in flight per connection (1 = one at a time).
  int pipeline_depth = 1;
  // Keys are key_prefix + index, index in [0, keys). Use a prefix no earlier run wrote: a key
  // the load never acknowledged is expected to be absent.
  int64_t keys = 100'000;
  std::string key_prefix = "weft:load:";
  int value_bytes = 100;
  // Fraction of requests that are DEL instead of SET, in [0, 1].
  double delete_fraction = 0;
  // Both bounds always apply.
  int64_t duration_ms = 10'000;
  int64_t ops_max = 1'000'000;
  int64_t window_ms = 100;
  std::string first_phase = "load";
  uint64_t seed = 1;
  int64_t connect_timeout_ms = 1000;
  int64_t reply_timeout_ms = 10'000;
  int64_t reconnect_backoff_ms_min = 10;
  int64_t reconnect_backoff_ms_max = 1000;
};

// Limits that keep a load (and the ledger's 8 bytes per key) bounded.
inline constexpr int kLoadMembersMax = 64;
inline constexpr int kLoadConnectionsMax = 256;
inline constexpr int kLoadPipelineDepthMax = 1024;
inline constexpr int64_t kLoadKeysMax = int64_t{1} << 28;
inline constexpr int kLoadValueBytesMax = 1 << 20;
inline constexpr int64_t kLoadDurationMsMax = 24LL * 3600 * 1000;

// InvalidArgument naming the first field out of range.
Status ValidateWriteLoadConfig(const WriteLoadConfig& config);

// A snapshot while the load runs (for progress bars).
struct LoadProgress {
  int64_t elapsed_us = 0;
  int64_t requests_sent = 0;
  int64_t replies_ok = 0;
  int64_t replies_error = 0;
  bool finished = false;
};

class WriteLoad {
 public:
  // REQUIRES: `clock` outlives the load and advances in real time (SystemClock): connection
  // threads wait on sockets in real time and stamp events with `clock`.
  WriteLoad(WriteLoadConfig config, const Clock& clock);
  // Stops the load (see Stop).
  ~WriteLoad();
  WriteLoad(const WriteLoad&) = delete;
  WriteLoad& operator=(const WriteLoad&) = delete;

  // Validates the configuration, starts the connection threads, lets each try to connect once
  // (in parallel, each try bounded by connect_timeout_ms) and then starts the clock: phase
  // config.first_phase, the schedule and the duration begin when Start returns. A member that
  // refuses is counted and retried, not an error here. FailedPrecondition if called twice.
  Status Start();

  // Starts phase `name` now (load_recorder.h). REQUIRES: Start() succeeded.
  Status MarkPhase(std::string_view name);

  // Waits until every connection has finished (bounds reached, outstanding replies answered or
  // timed out) or `timeout_ms` passed. Returns true if finished.
  bool WaitFinished(int64_t timeout_ms);

  // Asks the connections to stop sending now; returns at once. They still wait for their
  // outstanding replies (at most reply_timeout_ms); WaitFinished or Stop waits for that.
  void RequestStop();

  // RequestStop, then waits for the connections and joins their threads. Idempotent; returns
  // at once if never started.
  void Stop();

  LoadProgress Progress() const;
  const WriteLoadConfig& config() const { return config_; }

  // REQUIRES: finished. The measurements (load_report.h).
  LoadReport Report() const;

  // REQUIRES: finished. Visits, in connection then key order, every key the load wrote.
  void ForEachExpectation(const ExpectationVisitor& visit) const;

  // REQUIRES: finished. (key, value) of every key whose last acknowledged write was a SET and
  // that has no write in doubt — exactly what GET must return on every member. Keys left out
  // (last acknowledged write a DEL, or writes in doubt) are still checked by
  // ForEachExpectation / VerifyMember. Materialises every value: for small runs and tests.
  std::vector<std::pair<std::string, std::string>> AcknowledgedLastValues() const;

  // REQUIRES: finished. Keys with writes in doubt, over all connections.
  int64_t KeysInDoubt() const;

 private:
  class Connection;
  friend class Connection;

  // Called by each connection thread after its first connection attempt; returns the load's
  // start time once every connection has tried.
  int64_t ConnectedWaitForStart();
  // Called by each connection thread as it ends.
  void ConnectionFinished(int64_t now_us);
  bool finished() const;

  const WriteLoadConfig config_;
  const Clock& clock_;
  // connections_ is set by Start() before any connection thread exists, recorder_ before any
  // connection thread uses it (it waits for started_); both are read-only afterwards.
  std::unique_ptr<LoadRecorder> recorder_;
  std::vector<std::unique_ptr<Connection>> connections_;

  // Held while starting or joining the threads, so that concurrent Stop() calls all return
  // after the threads are gone.
  Mutex join_mutex_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mutex_);

  std::atomic<bool> stop_requested_{false};
  std::atomic<int64_t> tickets_left_{0};
  std::atomic<int64_t> requests_sent_{0};
  std::atomic<int64_t> replies_ok_{0};
  std::atomic<int64_t> replies_error_{0};

  mutable Mutex mutex_;
  // Signalled when a connection has tried to connect, when the load starts and when a
  // connection finishes. condition_variable_any over weft::Mutex (base/ has no condition
  // variable of its own yet).
  std::condition_variable_any signal_;
  bool start_called_ ABSL_GUARDED_BY(mutex_) = false;
  // Connections that have not yet made their first connection attempt.
  int connecting_ ABSL_GUARDED_BY(mutex_) = 0;
  // The clock has started: start_us_ and recorder_ are set.
  bool started_ ABSL_GUARDED_BY(mutex_) = false;
  int64_t start_us_ ABSL_GUARDED_BY(mutex_) = 0;
  int running_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t end_us_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace weft::tools
