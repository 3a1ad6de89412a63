// EtcdClient: the few etcd v3 calls EtcdRegistry needs, through etcd's JSON gateway (HTTP/1.1
// POSTs to /v3/kv/*, /v3/lease/*, /v3/watch; libcurl underneath, simdjson for the answers).
//
// Gateway facts this code relies on (etcd 3.4, checked against Debian's 3.4.23): keys and
// values travel base64-encoded; int64 fields are JSON strings; fields holding their default
// (0, false, empty) are omitted; an error answer is {"error": ..., "code": <gRPC code>,
// "message": ...} with a non-200 HTTP status; streaming calls (watch, lease keep-alive) answer
// newline-delimited {"result": ...} objects.
//
// Every unary call is bounded by the connect and request timeouts; a watch stream has a connect
// timeout, a deadline for its first answer, TCP keep-alive, and is cut short by an
// EtcdInterrupt. Errors name the endpoint and the call: Unavailable when etcd cannot be reached,
// DeadlineExceeded on a timeout, Cancelled when interrupted, and etcd's own gRPC code and text
// otherwise (e.g. NotFound "etcdserver: requested lease not found").
//
// Thread safety: EtcdClient is safe from any thread (idle curl handles are pooled under a lock;
// a request uses its handle alone). EtcdInterrupt is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "weft/base/mutex.h"
#include "weft/base/status.h"
#include "weft/membership/callback_gate.h"

typedef void CURL;
typedef void CURLM;

namespace weft::membership {

struct EtcdClientOptions {
  std::string endpoint;  // "host:port"
  int64_t connect_timeout_ms = 1000;
  int64_t request_timeout_ms = 3000;
  // An answer larger than this is refused (membership answers are kilobytes).
  size_t response_bytes_max = 16 << 20;
};

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct EtcdRangeResult {
  int64_t revision = 0;           // the store revision the range was read at
  std::vector<EtcdKeyValue> kvs;  // sorted by key
};

// One comparison of a transaction. With a non-empty range_end it applies to every key in
// [key, range_end); etcd compares an empty range as one absent key (all fields 0), so
// "mod_revision < N" over an empty range holds.
struct EtcdCompare {
  enum class Target : uint8_t { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result : uint8_t { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  std::string range_end;
  Target target = Target::kMod;
  Result result = Result::kEqual;
  int64_t number = 0;  // version, create/mod revision or lease id
  std::string value;   // for kValue

  // A comparison of a numeric field (every target but kValue).
  static EtcdCompare Number(std::string key, Target target, Result result, int64_t number,
                            std::string range_end = {});
};

struct EtcdOp {
  enum class Kind : uint8_t { kPut, kRange, kDeleteRange };
  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;
  std::string value;
  int64_t lease = 0;

  static EtcdOp Put(std::string key, std::string value, int64_t lease);
  static EtcdOp Range(std::string key, std::string range_end);
  static EtcdOp DeleteRange(std::string key, std::string range_end);
};

struct EtcdTxnResult {
  int64_t revision = 0;  // store revision after the transaction
  bool succeeded = false;
  // One per operation of the branch taken; only range operations fill kvs.
  std::vector<EtcdRangeResult> responses;
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_s = 0;  // as granted (etcd raises a TTL below its minimum)
};

struct EtcdEvent {
  bool deleted = false;  // DELETE (kv holds key and mod_revision only) or PUT
  EtcdKeyValue kv;
};

struct EtcdWatchResponse {
  int64_t revision = 0;  // header revision
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // set when canceled because history was compacted
  std::string cancel_reason;
  std::vector<EtcdEvent> events;  // in revision order; several revisions may share a response
};

// Lets another thread cut a watch stream (or a retry pause) short, promptly: it wakes the
// stream's curl_multi_poll. Once interrupted, it stays interrupted.
class EtcdInterrupt {
 public:
  void Interrupt();
  bool interrupted() const;
  // Sleeps for `duration` unless interrupted. Returns false if interrupted.
  bool SleepFor(std::chrono::milliseconds duration);

 private:
  friend class EtcdClient;
  // Lets Interrupt wake `multi`. Returns false if already interrupted.
  bool Attach(CURLM* multi);
  void Detach();

  mutable Mutex mutex_;
  MutexCondition wake_;
  bool interrupted_ ABSL_GUARDED_BY(mutex_) = false;
  CURLM* multi_ ABSL_GUARDED_BY(mutex_) = nullptr;
};

class EtcdClient {
 public:
  explicit EtcdClient(EtcdClientOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::string& endpoint() const { return options_.endpoint; }
  const EtcdClientOptions& options() const { return options_; }

  // Keys in [key, range_end), or just `key` if range_end is empty.
  StatusOr<EtcdRangeResult> Range(std::string_view key, std::string_view range_end);
  // Applies `success` if every compare holds, else `failure`, atomically.
  StatusOr<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compares,
                              const std::vector<EtcdOp>& success,
                              const std::vector<EtcdOp>& failure);
  // Returns the store revision after the delete.
  StatusOr<int64_t> DeleteRange(std::string_view key, std::string_view range_end);

  StatusOr<EtcdLease> GrantLease(int64_t ttl_s);
  // Renews the lease once. Returns its remaining TTL in seconds, 0 if etcd no longer has it.
  // `abort` (optional) cancels the request when it becomes true; `timeout_ms` (if > 0)
  // replaces the request timeout.
  StatusOr<int64_t> KeepAliveOnce(int64_t lease_id, const std::atomic<bool>* abort,
                                  int64_t timeout_ms);
  // Revokes the lease and deletes its keys. NotFound if etcd no longer has it.
  Status RevokeLease(int64_t lease_id);

  // Streams the watch of [key, range_end) from start_revision, calling on_response (on the
  // calling thread, outside curl) for every answer until on_response returns false (→ OK), the
  // interrupt fires (→ Cancelled), or the stream fails or ends (→ the error).
  Status Watch(std::string_view key, std::string_view range_end, int64_t start_revision,
               EtcdInterrupt& interrupt,
               const std::function<bool(const EtcdWatchResponse&)>& on_response);

  // POSTs a JSON body to `path` ("/v3/kv/range") and returns the 200 answer's body.
  StatusOr<std::string> Post(std::string_view path, std::string_view body,
                             const std::atomic<bool>* abort = nullptr, int64_t timeout_ms = 0);

 private:
  CURL* AcquireHandle();
  void ReleaseHandle(CURL* handle);
  Status CurlError(int code, const char* detail, std::string_view path) const;
  Status HttpError(long http_status, std::string_view body, std::string_view path) const;

  const EtcdClientOptions options_;
  Mutex mutex_;
  std::vector<CURL*> idle_handles_ ABSL_GUARDED_BY(mutex_);
};

// Base64 (standard alphabet, padded), as the gateway spells bytes.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);
// `text` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace weft::membership
