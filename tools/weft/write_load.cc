#include "tools/weft/write_load.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "weft/base/check.h"
#include "weft/base/random.h"
#include "weft/base/strings.h"

#include <sys/prctl.h>

namespace weft::tools {
namespace {

// Longest a connection thread waits in one go, so Stop() and the bounds are noticed promptly.
constexpr int64_t kWaitSliceUs = 20'000;
// Open loop: how long after the deadline requests that fell due before it may still be sent.
constexpr int64_t kLateSendGraceUs = 100'000;

std::string_view FirstWord(std::string_view text) {
  const size_t space = text.find(' ');
  return text.substr(0, std::min<size_t>(space, 32));
}

}  // namespace

Status ValidateWriteLoadConfig(const WriteLoadConfig& c) {
  auto invalid = [](std::string_view what) {
    return absl::InvalidArgumentError(StrCat("write load: ", what));
  };
  if (c.members.empty() || c.members.size() > kLoadMembersMax)
    return invalid(StrCat("between 1 and ", kLoadMembersMax, " members are needed"));
  if (c.connections_per_member < 1 ||
      c.connections_per_member * static_cast<int64_t>(c.members.size()) > kLoadConnectionsMax) {
    return invalid(StrCat("connections_per_member must be >= 1 and at most ", kLoadConnectionsMax,
                          " connections in total"));
  }
  if (!(c.rate_ops_per_s >= 0) || c.rate_ops_per_s > 1e8)
    return invalid("rate_ops_per_s must be in [0, 1e8] (0: closed loop)");
  if (c.pipeline_depth < 1 || c.pipeline_depth > kLoadPipelineDepthMax)
    return invalid(StrCat("pipeline_depth must be in [1, ", kLoadPipelineDepthMax, "]"));
  const int64_t connections = c.connections_per_member * static_cast<int64_t>(c.members.size());
  if (c.keys < connections || c.keys > kLoadKeysMax) {
    return invalid(StrCat("keys must be at least the number of connections (", connections,
                          ") and at most ", kLoadKeysMax));
  }
  if (c.value_bytes < 1 || c.value_bytes > kLoadValueBytesMax)
    return invalid(StrCat("value_bytes must be in [1, ", kLoadValueBytesMax, "]"));
  if (!(c.delete_fraction >= 0 && c.delete_fraction <= 1))
    return invalid("delete_fraction must be in [0, 1]");
  if (c.duration_ms < 1 || c.duration_ms > kLoadDurationMsMax)
    return invalid(StrCat("duration_ms must be in [1, ", kLoadDurationMsMax, "]"));
  if (c.ops_max < 1)
    return invalid("ops_max must be at least 1");
  if (c.window_ms < 1 || c.window_ms > 60'000)
    return invalid("window_ms must be in [1, 60000]");
  if (c.connect_timeout_ms < 1 || c.reply_timeout_ms < 1)
    return invalid("timeouts must be at least 1 ms");
  if (c.reconnect_backoff_ms_min < 1 || c.reconnect_backoff_ms_max < c.reconnect_backoff_ms_min)
    return invalid("reconnect backoff must satisfy 1 <= min <= max");
  return absl::OkStatus();
}

// One connection of the load and its thread's loop. Only its own thread touches it while the
// load runs; the load reads ledger() and backlog_at_end() after the thread has finished.
class WriteLoad::Connection {
 public:
  // `connections`: how many the load has.
  Connection(WriteLoad& load, int index, int connections, HostPort member, int64_t key_begin,
             int64_t key_end)
      : load_(load),
        config_(load.config_),
        index_(index),
        connections_(connections),
        member_(std::move(member)),
        ledger_(index, key_begin, key_end),
        random_(load.config_.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(index)),
        backoff_ms_(load.config_.reconnect_backoff_ms_min) {}

  // The thread's body: connects, waits for the load to start, runs to the end.
  void Run();

  const KeyLedger& ledger() const { return ledger_; }
  int64_t backlog_at_end() const { return backlog_at_end_; }
  // Why sending ended: "ops_max", "duration" or "stopped".
  std::string_view end_reason() const { return end_reason_; }

 private:
  struct InFlight {
    int64_t key_index;
    KeyLedger::Write write;
    int64_t scheduled_us;
    int64_t sent_us;
  };

  int64_t Now() const { return load_.clock_.NowMonotonicUs(); }
  RespClientOptions ClientOptions() const {
    RespClientOptions options;
    options.connect_timeout_ms = config_.connect_timeout_ms;
    options.io_timeout_ms = config_.reply_timeout_ms;
    return options;
  }
  // Sets the schedule and the deadline from the load's start.
  void Begin(int64_t start_us);
  int64_t NextDueUs() const {
    return first_due_us_ + std::llround(static_cast<double>(slots_sent_) * interval_us_);
  }
  bool SendingOver(int64_t now_us) const {
    if (tickets_exhausted_ || load_.stop_requested_.load(std::memory_order_relaxed))
      return true;
    if (!open_loop_)
      return now_us >= deadline_us_;
    // Requests that fell due before the deadline are still sent if the thread noticed them a
    // little late; only a connection that is really behind leaves a backlog.
    return NextDueUs() >= deadline_us_ || now_us >= deadline_us_ + kLateSendGraceUs;
  }
  bool ClaimTicket();
  // Connects when the backoff allows; false if not connected (after waiting a little).
  bool Connect(int64_t now_us);
  // Takes the outcome of a connection attempt: keeps the client, or counts the failure and
  // backs off. Returns whether connected.
  bool Connected(StatusOr<std::unique_ptr<RespClient>> client);
  void SendDue(int64_t now_us);
  void ReceiveReplies(int64_t now_us, bool sending);
  void HandleReply(const RespReply& reply, int64_t reply_us);
  // Closes the connection; its outstanding requests become lost and in doubt.
  void Drop(std::string_view why, int64_t now_us);
  void EndSending(int64_t now_us);
  void Finish(int64_t now_us);
  int64_t WaitBudgetUs(int64_t now_us, bool sending) const;

  WriteLoad& load_;
  const WriteLoadConfig& config_;
  const int index_;
  const int connections_;
  const HostPort member_;
  KeyLedger ledger_;
  Random random_;
  uint64_t counter_ = 0;
  std::unique_ptr<RespClient> client_;
  std::deque<InFlight> in_flight_;  // at most pipeline_depth
  StallTracker stall_;
  bool open_loop_ = false;
  double interval_us_ = 0;
  int64_t first_due_us_ = 0;
  int64_t slots_sent_ = 0;
  int64_t deadline_us_ = 0;
  bool tickets_exhausted_ = false;
  int64_t sending_ended_us_ = -1;
  int64_t backlog_at_end_ = 0;
  std::string_view end_reason_ = "duration";
  int64_t backoff_ms_;
  int64_t next_connect_us_ = 0;
};

void WriteLoad::Connection::Begin(int64_t start_us) {
  open_loop_ = config_.rate_ops_per_s > 0;
  if (open_loop_) {
    interval_us_ = 1e6 * static_cast<double>(connections_) / config_.rate_ops_per_s;
    // Stagger the connections' schedules so their requests do not all fall due together.
    first_due_us_ = start_us + static_cast<int64_t>(interval_us_ * index_ / connections_);
  }
  deadline_us_ = start_us + config_.duration_ms * 1000;
}

void WriteLoad::Connection::Run() {
  // Wake up when a request falls due, not up to 50 µs later (the default timer slack), which
  // would be measured as server latency.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  // Connect before the clock starts, so that connection setup does not count as the first
  // requests' latency. The attempt is bounded by connect_timeout_ms.
  StatusOr<std::unique_ptr<RespClient>> first = RespClient::Connect(member_, ClientOptions());
  Begin(load_.ConnectedWaitForStart());
  Connected(std::move(first));
  int64_t now_us = Now();
  while (true) {
    now_us = Now();
    const bool sending = !SendingOver(now_us);
    if (!sending) {
      if (sending_ended_us_ < 0)
        EndSending(now_us);
      if (in_flight_.empty() || now_us >= sending_ended_us_ + config_.reply_timeout_ms * 1000)
        break;
    }
    if (client_ == nullptr) {
      if (!sending)
        break;
      if (!Connect(now_us))
        continue;
      now_us = Now();
    }
    if (!in_flight_.empty() &&
        now_us - in_flight_.front().sent_us > config_.reply_timeout_ms * 1000) {
      Drop(StrCat("no reply within ", config_.reply_timeout_ms, " ms"), now_us);
      continue;
    }
    if (sending)
      SendDue(now_us);
    if (client_ != nullptr)
      ReceiveReplies(now_us, sending);
  }
  Finish(now_us);
}

bool WriteLoad::Connection::ClaimTicket() {
  if (load_.tickets_left_.fetch_sub(1, std::memory_order_relaxed) > 0)
    return true;
  tickets_exhausted_ = true;
  return false;
}

bool WriteLoad::Connection::Connect(int64_t now_us) {
  if (now_us < next_connect_us_) {
    const int64_t wait_us =
        std::min({next_connect_us_ - now_us, deadline_us_ - now_us, kWaitSliceUs});
    std::this_thread::sleep_for(std::chrono::microseconds(std::max<int64_t>(wait_us, 0)));
    return false;
  }
  return Connected(RespClient::Connect(member_, ClientOptions()));
}

bool WriteLoad::Connection::Connected(StatusOr<std::unique_ptr<RespClient>> client) {
  if (!client.ok()) {
    load_.recorder_->RecordConnectFailure(StatusMessage(client.status()));
    next_connect_us_ = Now() + backoff_ms_ * 1000;
    backoff_ms_ = std::min(backoff_ms_ * 2, config_.reconnect_backoff_ms_max);
    return false;
  }
  client_ = std::move(*client);
  return true;
}

void WriteLoad::Connection::SendDue(int64_t now_us) {
  int64_t sent = 0;
  while (in_flight_.size() < static_cast<size_t>(config_.pipeline_depth)) {
    int64_t scheduled_us = now_us;
    if (open_loop_) {
      scheduled_us = NextDueUs();
      if (scheduled_us > now_us || scheduled_us >= deadline_us_)
        break;
    }
    if (!ClaimTicket())
      break;
    const int64_t key_index =
        ledger_.key_begin() + static_cast<int64_t>(random_.Uniform(
                                  static_cast<uint64_t>(ledger_.key_end() - ledger_.key_begin())));
    const bool is_delete =
        config_.delete_fraction > 0 &&
        static_cast<double>(random_.Uniform(1'000'000)) < config_.delete_fraction * 1'000'000.0;
    const KeyLedger::Write write{++counter_, is_delete};
    const std::string key = LoadKey(config_.key_prefix, key_index);
    if (is_delete) {
      client_->Append({"DEL", key});
    } else {
      client_->Append({"SET", key, LoadValue(index_, write.counter, config_.value_bytes)});
    }
    in_flight_.push_back(InFlight{key_index, write, scheduled_us, now_us});
    stall_.OnSend(now_us);
    ++slots_sent_;
    ++sent;
  }
  if (sent == 0)
    return;
  load_.requests_sent_.fetch_add(sent, std::memory_order_relaxed);
  if (Status flushed = client_->Flush(); !flushed.ok())
    Drop(StatusMessage(flushed), Now());
}

int64_t WriteLoad::Connection::WaitBudgetUs(int64_t now_us, bool sending) const {
  int64_t until_us = now_us + kWaitSliceUs;
  if (sending) {
    until_us = std::min(until_us, deadline_us_);
    if (open_loop_ && in_flight_.size() < static_cast<size_t>(config_.pipeline_depth))
      until_us = std::min(until_us, NextDueUs());
  } else {
    until_us = std::min(until_us, sending_ended_us_ + config_.reply_timeout_ms * 1000);
  }
  if (!in_flight_.empty())
    until_us = std::min(until_us, in_flight_.front().sent_us + config_.reply_timeout_ms * 1000);
  return std::max<int64_t>(until_us - now_us, 0);
}

void WriteLoad::Connection::ReceiveReplies(int64_t now_us, bool sending) {
  StatusOr<std::optional<RespReply>> reply = client_->PollReply(WaitBudgetUs(now_us, sending));
  while (true) {
    if (!reply.ok()) {
      Drop(StatusMessage(reply.status()), Now());
      return;
    }
    if (!reply->has_value())
      return;
    const int64_t reply_us = Now();
    if (in_flight_.empty()) {
      Drop("reply to no request (protocol out of step)", reply_us);
      return;
    }
    HandleReply(**reply, reply_us);
    if (in_flight_.empty())
      return;
    // Take whatever else already arrived before sending more.
    reply = client_->PollReply(0);
  }
}

void WriteLoad::Connection::HandleReply(const RespReply& reply, int64_t reply_us) {
  const InFlight request = in_flight_.front();
  in_flight_.pop_front();
  std::string_view error_kind;
  bool ok = false;
  if (reply.is_error()) {
    error_kind = FirstWord(reply.text);
  } else if (request.write.is_delete ? reply.type == RespReply::Type::kInteger : reply.is_ok()) {
    ok = true;
  } else {
    error_kind = "unexpected reply";
  }
  if (ok) {
    ledger_.Acknowledged(request.key_index, request.write);
    load_.replies_ok_.fetch_add(1, std::memory_order_relaxed);
    backoff_ms_ = config_.reconnect_backoff_ms_min;
  } else {
    // LOADING is refused before the command runs; any other error may come after the write
    // was applied (e.g. a replication timeout), so its outcome is unknown.
    if (error_kind != "LOADING")
      ledger_.InDoubt(request.key_index, request.write);
    load_.replies_error_.fetch_add(1, std::memory_order_relaxed);
  }
  load_.recorder_->RecordReply(request.scheduled_us, reply_us, ok, error_kind);
  load_.recorder_->RecordStall(stall_.OnReply(reply_us, !in_flight_.empty()));
}

void WriteLoad::Connection::Drop(std::string_view why, int64_t now_us) {
  for (const InFlight& request : in_flight_)
    ledger_.InDoubt(request.key_index, request.write);
  load_.recorder_->RecordLost(now_us, static_cast<int64_t>(in_flight_.size()),
                              StrCat("connection: ", why), /*connection_broke=*/true);
  in_flight_.clear();
  client_.reset();
  next_connect_us_ = now_us + backoff_ms_ * 1000;
  backoff_ms_ = std::min(backoff_ms_ * 2, config_.reconnect_backoff_ms_max);
}

void WriteLoad::Connection::EndSending(int64_t now_us) {
  sending_ended_us_ = now_us;
  if (tickets_exhausted_) {
    end_reason_ = "ops_max";
  } else if (load_.stop_requested_.load(std::memory_order_relaxed)) {
    end_reason_ = "stopped";
  }
  if (!open_loop_ || tickets_exhausted_)
    return;
  // Requests that fell due before sending ended but were never sent: the connection was behind.
  const int64_t end_us = std::min(now_us, deadline_us_);
  if (end_us <= first_due_us_)
    return;
  const int64_t due =
      static_cast<int64_t>(std::ceil(static_cast<double>(end_us - first_due_us_) / interval_us_));
  backlog_at_end_ = std::max<int64_t>(due - slots_sent_, 0);
}

void WriteLoad::Connection::Finish(int64_t now_us) {
  if (!in_flight_.empty()) {
    for (const InFlight& request : in_flight_)
      ledger_.InDoubt(request.key_index, request.write);
    load_.recorder_->RecordLost(now_us, static_cast<int64_t>(in_flight_.size()),
                                "no reply before the load ended", /*connection_broke=*/false);
    in_flight_.clear();
  }
  if (std::optional<StallTracker::Stall> open = stall_.Open(now_us))
    load_.recorder_->RecordStall(*open);
  client_.reset();
  load_.ConnectionFinished(now_us);
}

WriteLoad::WriteLoad(WriteLoadConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

WriteLoad::~WriteLoad() {
  Stop();
}

namespace {

// BasicLockable over weft::Mutex for condition_variable_any. The analysis cannot follow the
// unlock and relock inside wait, so the adapter is exempt from it.
struct MutexAdapter {
  Mutex* mutex;
  void lock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mutex->Lock(); }
  void unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mutex->Unlock(); }
};

}  // namespace

Status WriteLoad::Start() {
  WEFT_RETURN_IF_ERROR(ValidateWriteLoadConfig(config_));
  MutexLock join_lock(&join_mutex_);
  const int connections = config_.connections_per_member * static_cast<int>(config_.members.size());
  {
    MutexLock lock(&mutex_);
    if (start_called_)
      return absl::FailedPreconditionError("write load already started");
    start_called_ = true;
    connecting_ = connections;
    running_ = connections;
  }
  tickets_left_.store(config_.ops_max, std::memory_order_relaxed);
  for (int i = 0; i < connections; ++i) {
    const int64_t key_begin = config_.keys * i / connections;
    const int64_t key_end = config_.keys * (i + 1) / connections;
    connections_.push_back(std::make_unique<Connection>(
        *this, i, connections,
        config_.members[static_cast<size_t>(i / config_.connections_per_member)], key_begin,
        key_end));
  }
  for (const std::unique_ptr<Connection>& connection : connections_)
    threads_.emplace_back([raw = connection.get()] { raw->Run(); });

  // Every connection has tried once (each try is bounded by connect_timeout_ms): start.
  MutexLock lock(&mutex_);
  while (connecting_ > 0) {
    MutexAdapter adapter{&mutex_};
    signal_.wait(adapter);
  }
  start_us_ = clock_.NowMonotonicUs();
  LoadRecorder::Options options;
  options.window_us = config_.window_ms * 1000;
  options.windows_max =
      static_cast<size_t>((config_.duration_ms + config_.reply_timeout_ms) / config_.window_ms + 2);
  options.first_phase = config_.first_phase;
  recorder_ = std::make_unique<LoadRecorder>(options, start_us_);
  started_ = true;
  signal_.notify_all();
  return absl::OkStatus();
}

int64_t WriteLoad::ConnectedWaitForStart() {
  MutexLock lock(&mutex_);
  --connecting_;
  signal_.notify_all();
  while (!started_) {
    MutexAdapter adapter{&mutex_};
    signal_.wait(adapter);
  }
  return start_us_;
}

Status WriteLoad::MarkPhase(std::string_view name) {
  {
    MutexLock lock(&mutex_);
    if (!started_)
      return absl::FailedPreconditionError("write load not started");
  }
  return recorder_->MarkPhase(name, clock_.NowMonotonicUs());
}

void WriteLoad::ConnectionFinished(int64_t now_us) {
  MutexLock lock(&mutex_);
  --running_;
  end_us_ = std::max(end_us_, now_us);
  signal_.notify_all();
}

bool WriteLoad::WaitFinished(int64_t timeout_ms) {
  const int64_t deadline_us = clock_.NowMonotonicUs() + timeout_ms * 1000;
  MutexLock lock(&mutex_);
  while (running_ > 0) {
    const int64_t left_us = deadline_us - clock_.NowMonotonicUs();
    if (left_us <= 0)
      return false;
    MutexAdapter adapter{&mutex_};
    signal_.wait_for(adapter, std::chrono::microseconds(left_us));
  }
  return true;
}

void WriteLoad::RequestStop() {
  stop_requested_.store(true, std::memory_order_relaxed);
}

void WriteLoad::Stop() {
  RequestStop();
  MutexLock join_lock(&join_mutex_);
  for (std::thread& thread : threads_) {
    if (thread.joinable())
      thread.join();
  }
}

bool WriteLoad::finished() const {
  MutexLock lock(&mutex_);
  return started_ && running_ == 0;
}

LoadProgress WriteLoad::Progress() const {
  LoadProgress progress;
  {
    MutexLock lock(&mutex_);
    if (!started_)
      return progress;
    progress.elapsed_us = (running_ == 0 ? end_us_ : clock_.NowMonotonicUs()) - start_us_;
    progress.finished = running_ == 0;
  }
  progress.requests_sent = requests_sent_.load(std::memory_order_relaxed);
  progress.replies_ok = replies_ok_.load(std::memory_order_relaxed);
  progress.replies_error = replies_error_.load(std::memory_order_relaxed);
  return progress;
}

LoadReport WriteLoad::Report() const {
  WEFT_CHECK(finished());
  int64_t end_us = 0;
  {
    MutexLock lock(&mutex_);
    end_us = end_us_;
  }
  LoadReport report = recorder_->Report(end_us);
  report.requests_sent = requests_sent_.load(std::memory_order_relaxed);
  for (const std::unique_ptr<Connection>& connection : connections_)
    report.backlog_at_end += connection->backlog_at_end();
  // The earliest reason wins the name: a load stopped by the caller says so even if some
  // connections had already reached a bound.
  report.end_reason = "duration";
  for (const std::unique_ptr<Connection>& connection : connections_) {
    if (connection->end_reason() == "stopped" ||
        (connection->end_reason() == "ops_max" && report.end_reason == "duration")) {
      report.end_reason = std::string(connection->end_reason());
    }
  }
  return report;
}

void WriteLoad::ForEachExpectation(const ExpectationVisitor& visit) const {
  WEFT_CHECK(finished());
  for (const std::unique_ptr<Connection>& connection : connections_)
    connection->ledger().ForEach(config_.key_prefix, config_.value_bytes, visit);
}

std::vector<std::pair<std::string, std::string>> WriteLoad::AcknowledgedLastValues() const {
  std::vector<std::pair<std::string, std::string>> values;
  ForEachExpectation([&](const KeyExpectation& expectation) {
    if (expectation.value.has_value() && expectation.in_doubt.empty() &&
        !expectation.unverifiable) {
      values.emplace_back(expectation.key, *expectation.value);
    }
  });
  return values;
}

int64_t WriteLoad::KeysInDoubt() const {
  WEFT_CHECK(finished());
  int64_t keys = 0;
  for (const std::unique_ptr<Connection>& connection : connections_)
    keys += connection->ledger().keys_in_doubt();
  return keys;
}

}  // namespace weft::tools
