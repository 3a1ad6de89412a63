#include "weft/membership/etcd_client.h"

#include <simdjson.h>

#include <charconv>
#include <mutex>
#include <utility>

#include "weft/base/check.h"
#include "weft/base/logging.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>

namespace weft::membership {
namespace {

// libcurl wants curl_global_init once per process before any handle exists. Since 7.84 it is
// thread-safe, but older libcurl is not; once_flag covers both.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// At most this many idle handles (each keeps a connection to etcd) wait in the pool.
constexpr size_t kIdleHandlesMax = 4;

struct BodyBuffer {
  std::string* out;
  size_t bytes_max;
  bool overflow = false;
};

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* buffer = static_cast<BodyBuffer*>(user);
  const size_t bytes = size * count;
  if (buffer->out->size() + bytes > buffer->bytes_max) {
    buffer->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  buffer->out->append(data, bytes);
  return bytes;
}

int AbortIfSet(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* abort = static_cast<const std::atomic<bool>*>(user);
  return abort->load(std::memory_order_relaxed) ? 1 : 0;
}

void SetCommonOptions(CURL* curl, const EtcdClientOptions& options, const std::string& url,
                      std::string_view body, curl_slist* headers, char* error_buffer) {
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  // The registry talks to one etcd endpoint directly; a proxy from the environment
  // (http_proxy) would only get in the way.
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  error_buffer[0] = '\0';
}

const char* CompareTargetName(EtcdCompare::Target target) {
  switch (target) {
    case EtcdCompare::Target::kVersion:
      return "VERSION";
    case EtcdCompare::Target::kCreate:
      return "CREATE";
    case EtcdCompare::Target::kMod:
      return "MOD";
    case EtcdCompare::Target::kValue:
      return "VALUE";
    case EtcdCompare::Target::kLease:
      return "LEASE";
  }
  return "MOD";
}

const char* CompareResultName(EtcdCompare::Result result) {
  switch (result) {
    case EtcdCompare::Result::kEqual:
      return "EQUAL";
    case EtcdCompare::Result::kGreater:
      return "GREATER";
    case EtcdCompare::Result::kLess:
      return "LESS";
    case EtcdCompare::Result::kNotEqual:
      return "NOT_EQUAL";
  }
  return "EQUAL";
}

// {"key":"..","range_end":".."} without braces.
std::string KeyRangeFields(std::string_view key, std::string_view range_end) {
  std::string out = fmt::format(R"("key":"{}")", Base64Encode(key));
  if (!range_end.empty()) {
    fmt::format_to(std::back_inserter(out), R"(,"range_end":"{}")", Base64Encode(range_end));
  }
  return out;
}

std::string CompareJson(const EtcdCompare& compare) {
  std::string out = fmt::format(
      R"({{"result":"{}","target":"{}",{})", CompareResultName(compare.result),
      CompareTargetName(compare.target), KeyRangeFields(compare.key, compare.range_end));
  switch (compare.target) {
    case EtcdCompare::Target::kVersion:
      fmt::format_to(std::back_inserter(out), R"(,"version":"{}"}})", compare.number);
      break;
    case EtcdCompare::Target::kCreate:
      fmt::format_to(std::back_inserter(out), R"(,"create_revision":"{}"}})", compare.number);
      break;
    case EtcdCompare::Target::kMod:
      fmt::format_to(std::back_inserter(out), R"(,"mod_revision":"{}"}})", compare.number);
      break;
    case EtcdCompare::Target::kValue:
      fmt::format_to(std::back_inserter(out), R"(,"value":"{}"}})", Base64Encode(compare.value));
      break;
    case EtcdCompare::Target::kLease:
      fmt::format_to(std::back_inserter(out), R"(,"lease":"{}"}})", compare.number);
      break;
  }
  return out;
}

std::string OpJson(const EtcdOp& op) {
  switch (op.kind) {
    case EtcdOp::Kind::kPut:
      return fmt::format(R"({{"request_put":{{"key":"{}","value":"{}","lease":"{}"}}}})",
                         Base64Encode(op.key), Base64Encode(op.value), op.lease);
    case EtcdOp::Kind::kRange:
      return fmt::format(R"({{"request_range":{{{}}}}})", KeyRangeFields(op.key, op.range_end));
    case EtcdOp::Kind::kDeleteRange:
      return fmt::format(R"({{"request_delete_range":{{{}}}}})",
                         KeyRangeFields(op.key, op.range_end));
  }
  return "{}";
}

template <typename Items, typename ToJson>
std::string JsonArray(const Items& items, ToJson to_json) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    out += to_json(items[i]);
  }
  out.push_back(']');
  return out;
}

// --- reading answers -----------------------------------------------------------------------

using simdjson::dom::element;
using simdjson::dom::object;

Status BadAnswer(std::string_view what) {
  return absl::InternalError(fmt::format("unexpected answer from etcd: {}", what));
}

// An optional object field; nullopt if absent.
std::optional<element> Field(const object& parent, std::string_view name) {
  element value;
  if (parent[name].get(value) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return value;
}

// int64 fields come as strings (or, leniently, numbers); absent means 0.
StatusOr<int64_t> Int64Field(const object& parent, std::string_view name) {
  std::optional<element> value = Field(parent, name);
  if (!value) {
    return 0;
  }
  int64_t number = 0;
  if (value->get_int64().get(number) == simdjson::SUCCESS) {
    return number;
  }
  std::string_view text;
  if (value->get_string().get(text) != simdjson::SUCCESS) {
    return BadAnswer(fmt::format("field {} is neither a string nor a number", name));
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) {
    return BadAnswer(fmt::format("field {} = '{}' is not an int64", name, text));
  }
  return number;
}

StatusOr<std::string> BytesField(const object& parent, std::string_view name) {
  std::optional<element> value = Field(parent, name);
  if (!value) {
    return std::string();
  }
  std::string_view text;
  if (value->get_string().get(text) != simdjson::SUCCESS) {
    return BadAnswer(fmt::format("field {} is not a string", name));
  }
  std::optional<std::string> bytes = Base64Decode(text);
  if (!bytes) {
    return BadAnswer(fmt::format("field {} is not base64", name));
  }
  return *std::move(bytes);
}

bool BoolField(const object& parent, std::string_view name) {
  std::optional<element> value = Field(parent, name);
  bool flag = false;
  return value && value->get_bool().get(flag) == simdjson::SUCCESS && flag;
}

StatusOr<object> ObjectField(const object& parent, std::string_view name) {
  std::optional<element> value = Field(parent, name);
  object result;
  if (!value || value->get_object().get(result) != simdjson::SUCCESS) {
    return BadAnswer(fmt::format("no object field {}", name));
  }
  return result;
}

StatusOr<int64_t> HeaderRevision(const object& answer) {
  WEFT_ASSIGN_OR_RETURN(object header, ObjectField(answer, "header"));
  return Int64Field(header, "revision");
}

StatusOr<EtcdKeyValue> ParseKeyValue(const object& kv) {
  EtcdKeyValue result;
  WEFT_ASSIGN_OR_RETURN(result.key, BytesField(kv, "key"));
  WEFT_ASSIGN_OR_RETURN(result.value, BytesField(kv, "value"));
  WEFT_ASSIGN_OR_RETURN(result.create_revision, Int64Field(kv, "create_revision"));
  WEFT_ASSIGN_OR_RETURN(result.mod_revision, Int64Field(kv, "mod_revision"));
  WEFT_ASSIGN_OR_RETURN(result.version, Int64Field(kv, "version"));
  WEFT_ASSIGN_OR_RETURN(result.lease, Int64Field(kv, "lease"));
  return result;
}

// A RangeResponse body; `revision` as given (the txn's header for nested ranges).
StatusOr<EtcdRangeResult> ParseRange(const object& range, int64_t revision) {
  EtcdRangeResult result;
  result.revision = revision;
  std::optional<element> kvs = Field(range, "kvs");
  if (!kvs) {
    return result;
  }
  simdjson::dom::array array;
  if (kvs->get_array().get(array) != simdjson::SUCCESS) {
    return BadAnswer("kvs is not an array");
  }
  for (element item : array) {
    object kv;
    if (item.get_object().get(kv) != simdjson::SUCCESS) {
      return BadAnswer("a kvs entry is not an object");
    }
    WEFT_ASSIGN_OR_RETURN(EtcdKeyValue parsed, ParseKeyValue(kv));
    result.kvs.push_back(std::move(parsed));
  }
  return result;
}

StatusOr<object> ParseObject(simdjson::dom::parser& parser, std::string_view text) {
  object result;
  if (parser.parse(text.data(), text.size()).get_object().get(result) != simdjson::SUCCESS) {
    return BadAnswer(fmt::format("not a JSON object: '{}'", text.substr(0, 200)));
  }
  return result;
}

// The message of an error answer ({"error": "..."} or {"error": {"message": ...}}).
std::string ErrorText(const object& answer) {
  std::string_view text;
  std::optional<element> message = Field(answer, "message");
  if (message && message->get_string().get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  std::optional<element> error = Field(answer, "error");
  if (!error) {
    return "";
  }
  if (error->get_string().get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  object nested;
  if (error->get_object().get(nested) == simdjson::SUCCESS) {
    return ErrorText(nested);
  }
  return "";
}

absl::StatusCode ErrorCode(const object& answer) {
  StatusOr<int64_t> code = Int64Field(answer, "code");
  if (!code.ok() || *code == 0) {
    std::optional<element> error = Field(answer, "error");
    object nested;
    if (error && error->get_object().get(nested) == simdjson::SUCCESS) {
      code = Int64Field(nested, "grpc_code");
    }
  }
  // gRPC and Abseil number their codes alike.
  if (code.ok() && *code > 0 && *code <= 16) {
    return static_cast<absl::StatusCode>(*code);
  }
  return absl::StatusCode::kUnknown;
}

StatusOr<EtcdWatchResponse> ParseWatchResult(const object& result) {
  EtcdWatchResponse response;
  WEFT_ASSIGN_OR_RETURN(response.revision, HeaderRevision(result));
  response.created = BoolField(result, "created");
  response.canceled = BoolField(result, "canceled");
  WEFT_ASSIGN_OR_RETURN(response.compact_revision, Int64Field(result, "compact_revision"));
  std::string_view reason;
  std::optional<element> cancel_reason = Field(result, "cancel_reason");
  if (cancel_reason && cancel_reason->get_string().get(reason) == simdjson::SUCCESS) {
    response.cancel_reason = std::string(reason);
  }
  std::optional<element> events = Field(result, "events");
  simdjson::dom::array array;
  if (events && events->get_array().get(array) == simdjson::SUCCESS) {
    for (element item : array) {
      object event;
      if (item.get_object().get(event) != simdjson::SUCCESS) {
        return BadAnswer("a watch event is not an object");
      }
      EtcdEvent parsed;
      std::string_view type;
      std::optional<element> type_field = Field(event, "type");
      parsed.deleted =
          type_field && type_field->get_string().get(type) == simdjson::SUCCESS && type == "DELETE";
      WEFT_ASSIGN_OR_RETURN(object kv, ObjectField(event, "kv"));
      WEFT_ASSIGN_OR_RETURN(parsed.kv, ParseKeyValue(kv));
      response.events.push_back(std::move(parsed));
    }
  }
  return response;
}

}  // namespace

EtcdCompare EtcdCompare::Number(std::string key, Target target, Result result, int64_t number,
                                std::string range_end) {
  EtcdCompare compare;
  compare.key = std::move(key);
  compare.range_end = std::move(range_end);
  compare.target = target;
  compare.result = result;
  compare.number = number;
  return compare;
}

EtcdOp EtcdOp::Put(std::string key, std::string value, int64_t lease) {
  EtcdOp op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

EtcdOp EtcdOp::Range(std::string key, std::string range_end) {
  EtcdOp op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

EtcdOp EtcdOp::DeleteRange(std::string key, std::string range_end) {
  EtcdOp op;
  op.kind = Kind::kDeleteRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(length));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  }
  out.resize(static_cast<size_t>(length) - padding);
  return out;
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

void EtcdInterrupt::Interrupt() {
  MutexLock lock(&mutex_);
  interrupted_ = true;
  if (multi_ != nullptr) {
    curl_multi_wakeup(multi_);
  }
  wake_.SignalAll();
}

bool EtcdInterrupt::interrupted() const {
  MutexLock lock(&mutex_);
  return interrupted_;
}

bool EtcdInterrupt::SleepFor(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  MutexLock lock(&mutex_);
  while (!interrupted_ && std::chrono::steady_clock::now() < deadline) {
    wake_.WaitUntil(&mutex_, deadline);
  }
  return !interrupted_;
}

bool EtcdInterrupt::Attach(CURLM* multi) {
  MutexLock lock(&mutex_);
  if (interrupted_) {
    return false;
  }
  multi_ = multi;
  return true;
}

void EtcdInterrupt::Detach() {
  MutexLock lock(&mutex_);
  multi_ = nullptr;
}

EtcdClient::EtcdClient(EtcdClientOptions options) : options_(std::move(options)) {
  InitCurlOnce();
}

EtcdClient::~EtcdClient() {
  MutexLock lock(&mutex_);
  for (CURL* handle : idle_handles_) {
    curl_easy_cleanup(handle);
  }
  idle_handles_.clear();
}

CURL* EtcdClient::AcquireHandle() {
  {
    MutexLock lock(&mutex_);
    if (!idle_handles_.empty()) {
      CURL* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  CURL* handle = curl_easy_init();
  WEFT_CHECK(handle != nullptr);  // only fails when out of memory
  return handle;
}

void EtcdClient::ReleaseHandle(CURL* handle) {
  // curl_easy_reset clears the options but keeps the connection to etcd open for reuse.
  curl_easy_reset(handle);
  MutexLock lock(&mutex_);
  if (idle_handles_.size() < kIdleHandlesMax) {
    idle_handles_.push_back(handle);
    return;
  }
  curl_easy_cleanup(handle);
}

Status EtcdClient::CurlError(int code, const char* detail, std::string_view path) const {
  const auto curl_code = static_cast<CURLcode>(code);
  const std::string text = (detail != nullptr && detail[0] != '\0')
                               ? std::string(detail)
                               : std::string(curl_easy_strerror(curl_code));
  switch (curl_code) {
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(
          fmt::format("request to etcd at {} (POST {}) was cancelled", endpoint(), path));
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(
          fmt::format("etcd at {} did not answer POST {} in time: {}", endpoint(), path, text));
    default:
      return absl::UnavailableError(
          fmt::format("etcd unreachable at {} (POST {}): {}", endpoint(), path, text));
  }
}

Status EtcdClient::HttpError(long http_status, std::string_view body, std::string_view path) const {
  simdjson::dom::parser parser;
  StatusOr<object> answer = ParseObject(parser, body);
  if (!answer.ok()) {
    return absl::UnavailableError(fmt::format("etcd at {}: POST {}: HTTP {}: {}", endpoint(), path,
                                              http_status, body.substr(0, 200)));
  }
  return Status(ErrorCode(*answer), fmt::format("etcd at {}: POST {}: HTTP {}: {}", endpoint(),
                                                path, http_status, ErrorText(*answer)));
}

StatusOr<std::string> EtcdClient::Post(std::string_view path, std::string_view body,
                                       const std::atomic<bool>* abort, int64_t timeout_ms) {
  CURL* curl = AcquireHandle();
  const std::string url = fmt::format("http://{}{}", options_.endpoint, path);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  char error_buffer[CURL_ERROR_SIZE];
  SetCommonOptions(curl, options_, url, body, headers, error_buffer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(timeout_ms > 0 ? timeout_ms : options_.request_timeout_ms));
  std::string answer;
  BodyBuffer buffer{&answer, options_.response_bytes_max};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
  if (abort != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &AbortIfSet);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, abort);
  }
  const CURLcode code = curl_easy_perform(curl);
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  ReleaseHandle(curl);
  curl_slist_free_all(headers);
  if (buffer.overflow) {
    return absl::ResourceExhaustedError(fmt::format("etcd at {}: POST {}: answer over {} bytes",
                                                    endpoint(), path, buffer.bytes_max));
  }
  if (code != CURLE_OK) {
    return CurlError(code, error_buffer, path);
  }
  if (http_status != 200) {
    return HttpError(http_status, answer, path);
  }
  return answer;
}

StatusOr<EtcdRangeResult> EtcdClient::Range(std::string_view key, std::string_view range_end) {
  constexpr std::string_view kPath = "/v3/kv/range";
  WEFT_ASSIGN_OR_RETURN(std::string body,
                        Post(kPath, fmt::format("{{{}}}", KeyRangeFields(key, range_end))));
  simdjson::dom::parser parser;
  WEFT_ASSIGN_OR_RETURN(object answer, ParseObject(parser, body));
  WEFT_ASSIGN_OR_RETURN(int64_t revision, HeaderRevision(answer));
  return ParseRange(answer, revision);
}

StatusOr<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compares,
                                        const std::vector<EtcdOp>& success,
                                        const std::vector<EtcdOp>& failure) {
  constexpr std::string_view kPath = "/v3/kv/txn";
  const std::string request =
      fmt::format(R"({{"compare":{},"success":{},"failure":{}}})", JsonArray(compares, CompareJson),
                  JsonArray(success, OpJson), JsonArray(failure, OpJson));
  WEFT_ASSIGN_OR_RETURN(std::string body, Post(kPath, request));
  simdjson::dom::parser parser;
  WEFT_ASSIGN_OR_RETURN(object answer, ParseObject(parser, body));
  EtcdTxnResult result;
  WEFT_ASSIGN_OR_RETURN(result.revision, HeaderRevision(answer));
  result.succeeded = BoolField(answer, "succeeded");
  const size_t expected = (result.succeeded ? success : failure).size();
  std::optional<element> responses = Field(answer, "responses");
  simdjson::dom::array array;
  if (responses && responses->get_array().get(array) == simdjson::SUCCESS) {
    for (element item : array) {
      object response;
      if (item.get_object().get(response) != simdjson::SUCCESS) {
        return BadAnswer("a txn response is not an object");
      }
      std::optional<element> range = Field(response, "response_range");
      object range_object;
      if (range && range->get_object().get(range_object) == simdjson::SUCCESS) {
        WEFT_ASSIGN_OR_RETURN(EtcdRangeResult parsed, ParseRange(range_object, result.revision));
        result.responses.push_back(std::move(parsed));
      } else {
        result.responses.push_back(EtcdRangeResult{result.revision, {}});
      }
    }
  }
  if (result.responses.size() != expected) {
    return BadAnswer(fmt::format("txn answered {} responses for {} operations",
                                 result.responses.size(), expected));
  }
  return result;
}

StatusOr<int64_t> EtcdClient::DeleteRange(std::string_view key, std::string_view range_end) {
  WEFT_ASSIGN_OR_RETURN(
      std::string body,
      Post("/v3/kv/deleterange", fmt::format("{{{}}}", KeyRangeFields(key, range_end))));
  simdjson::dom::parser parser;
  WEFT_ASSIGN_OR_RETURN(object answer, ParseObject(parser, body));
  return HeaderRevision(answer);
}

StatusOr<EtcdLease> EtcdClient::GrantLease(int64_t ttl_s) {
  WEFT_ASSIGN_OR_RETURN(std::string body,
                        Post("/v3/lease/grant", fmt::format(R"({{"TTL":"{}"}})", ttl_s)));
  simdjson::dom::parser parser;
  WEFT_ASSIGN_OR_RETURN(object answer, ParseObject(parser, body));
  EtcdLease lease;
  WEFT_ASSIGN_OR_RETURN(lease.id, Int64Field(answer, "ID"));
  WEFT_ASSIGN_OR_RETURN(lease.ttl_s, Int64Field(answer, "TTL"));
  const std::string error = ErrorText(answer);
  if (lease.id == 0 || lease.ttl_s <= 0 || !error.empty()) {
    return absl::UnavailableError(fmt::format("etcd at {} did not grant a lease: {}", endpoint(),
                                              error.empty() ? body : error));
  }
  return lease;
}

StatusOr<int64_t> EtcdClient::KeepAliveOnce(int64_t lease_id, const std::atomic<bool>* abort,
                                            int64_t timeout_ms) {
  // A streaming call: the gateway sends our one request, answers it, and closes the stream when
  // the request body ends.
  WEFT_ASSIGN_OR_RETURN(
      std::string body,
      Post("/v3/lease/keepalive", fmt::format(R"({{"ID":"{}"}})", lease_id), abort, timeout_ms));
  const size_t line_end = body.find('\n');
  const std::string_view line = std::string_view(body).substr(0, line_end);
  simdjson::dom::parser parser;
  WEFT_ASSIGN_OR_RETURN(object answer, ParseObject(parser, line));
  if (!Field(answer, "result")) {
    return Status(ErrorCode(answer), fmt::format("etcd at {}: lease keep-alive failed: {}",
                                                 endpoint(), ErrorText(answer)));
  }
  WEFT_ASSIGN_OR_RETURN(object result, ObjectField(answer, "result"));
  return Int64Field(result, "TTL");
}

Status EtcdClient::RevokeLease(int64_t lease_id) {
  return Post("/v3/lease/revoke", fmt::format(R"({{"ID":"{}"}})", lease_id)).status();
}

namespace {

struct StreamState {
  std::string pending;
  size_t bytes_max;
  bool overflow = false;
};

size_t AppendStream(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<StreamState*>(user);
  const size_t bytes = size * count;
  if (state->pending.size() + bytes > state->bytes_max) {
    state->overflow = true;
    return 0;
  }
  state->pending.append(data, bytes);
  return bytes;
}

}  // namespace

Status EtcdClient::Watch(std::string_view key, std::string_view range_end, int64_t start_revision,
                         EtcdInterrupt& interrupt,
                         const std::function<bool(const EtcdWatchResponse&)>& on_response) {
  constexpr std::string_view kPath = "/v3/watch";
  const std::string request = fmt::format(R"({{"create_request":{{{},"start_revision":"{}"}}}})",
                                          KeyRangeFields(key, range_end), start_revision);
  const std::string url = fmt::format("http://{}{}", options_.endpoint, kPath);
  CURL* curl = curl_easy_init();
  CURLM* multi = curl_multi_init();
  WEFT_CHECK(curl != nullptr && multi != nullptr);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  char error_buffer[CURL_ERROR_SIZE];
  SetCommonOptions(curl, options_, url, request, headers, error_buffer);
  // No overall timeout: the stream lives as long as the watch. A dead peer is noticed through
  // TCP keep-alive; a silent etcd through the first-answer deadline below.
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 5L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 2L);
  StreamState stream{.pending = {}, .bytes_max = options_.response_bytes_max};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendStream);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &stream);
  curl_multi_add_handle(multi, curl);

  const auto first_answer_deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(options_.connect_timeout_ms + options_.request_timeout_ms);
  bool answered = false;
  Status status = absl::OkStatus();
  bool done = false;
  if (!interrupt.Attach(multi)) {
    status = absl::CancelledError("watch interrupted");
    done = true;
  }
  simdjson::dom::parser parser;
  while (!done) {
    int running = 0;
    curl_multi_perform(multi, &running);
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    // Complete lines are whole answers (the gateway ends each with '\n'). A non-200 answer is
    // one error object; it is read once the transfer ends.
    size_t line_end = 0;
    while (http_status == 200 && !done &&
           (line_end = stream.pending.find('\n')) != std::string::npos) {
      const std::string line = stream.pending.substr(0, line_end);
      stream.pending.erase(0, line_end + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) {
        continue;
      }
      StatusOr<object> answer = ParseObject(parser, line);
      if (!answer.ok()) {
        status = answer.status();
        done = true;
        break;
      }
      if (!Field(*answer, "result")) {
        status = Status(ErrorCode(*answer), fmt::format("etcd at {}: watch failed: {}", endpoint(),
                                                        ErrorText(*answer)));
        done = true;
        break;
      }
      StatusOr<object> result = ObjectField(*answer, "result");
      StatusOr<EtcdWatchResponse> response =
          result.ok() ? ParseWatchResult(*result) : StatusOr<EtcdWatchResponse>(result.status());
      if (!response.ok()) {
        status = response.status();
        done = true;
        break;
      }
      answered = true;
      if (!on_response(*response)) {
        done = true;
      }
    }
    if (done) {
      break;
    }
    if (interrupt.interrupted()) {
      status = absl::CancelledError("watch interrupted");
      break;
    }
    if (running == 0) {
      int queued = 0;
      CURLcode code = CURLE_OK;
      while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
        if (message->msg == CURLMSG_DONE) {
          code = message->data.result;
        }
      }
      if (stream.overflow) {
        status = absl::ResourceExhaustedError(fmt::format(
            "etcd at {}: a watch answer is over {} bytes", endpoint(), stream.bytes_max));
      } else if (code != CURLE_OK) {
        status = CurlError(code, error_buffer, kPath);
      } else if (http_status != 200) {
        status = HttpError(http_status, stream.pending, kPath);
      } else {
        status =
            absl::UnavailableError(fmt::format("etcd at {} closed the watch stream", endpoint()));
      }
      break;
    }
    if (!answered && std::chrono::steady_clock::now() > first_answer_deadline) {
      status = absl::DeadlineExceededError(
          fmt::format("etcd at {} did not answer a watch request in time", endpoint()));
      break;
    }
    curl_multi_poll(multi, nullptr, 0, /*timeout_ms=*/1000, nullptr);
  }
  interrupt.Detach();
  curl_multi_remove_handle(multi, curl);
  curl_easy_cleanup(curl);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  return status;
}

}  // namespace weft::membership
