#include "tools/weft/load_verifier.h"

#include "weft/base/strings.h"

#include <fmt/format.h>

namespace weft::tools {
namespace {

std::string Describe(const std::optional<std::string>& value) {
  if (!value.has_value())
    return "(absent)";
  return value->size() <= 40
             ? fmt::format("'{}'", *value)
             : fmt::format("'{}...' ({} bytes)", value->substr(0, 40), value->size());
}

// Checks one batch of expectations against the member with one MGET.
Status CheckBatch(RespClient& client, const std::vector<KeyExpectation>& batch,
                  const VerifyOptions& options, VerifyReport* report) {
  std::vector<std::string> command;
  command.reserve(batch.size() + 1);
  command.emplace_back("MGET");
  for (const KeyExpectation& expectation : batch)
    command.push_back(expectation.key);
  WEFT_ASSIGN_OR_RETURN(RespReply reply, client.Call(command));
  if (reply.type != RespReply::Type::kArray || reply.elements.size() != batch.size()) {
    return absl::DataLossError(
        StrCat(client.address().ToString(), ": unexpected MGET reply: ", reply.DebugString()));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const RespReply& element = reply.elements[i];
    std::optional<std::string> observed;
    if (element.type == RespReply::Type::kBulkString) {
      observed = element.text;
    } else if (!element.is_null()) {
      return absl::DataLossError(
          StrCat(client.address().ToString(), ": MGET element is ", element.DebugString()));
    }
    const KeyExpectation& expectation = batch[i];
    ++report->keys_checked;
    if (!expectation.Accepts(observed)) {
      ++report->keys_mismatched;
      if (report->mismatch_examples.size() < options.examples_max) {
        report->mismatch_examples.push_back(fmt::format(
            "{}: expected {}{}, found {}", expectation.key, Describe(expectation.value),
            expectation.in_doubt.empty()
                ? ""
                : fmt::format(" or one of {} writes in doubt", expectation.in_doubt.size()),
            Describe(observed)));
      }
    } else if (observed != expectation.value) {
      ++report->keys_matched_in_doubt;
    }
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<VerifyReport> VerifyMember(const HostPort& member, const WriteLoad& load,
                                    const VerifyOptions& options) {
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<RespClient> client,
                        RespClient::Connect(member, options.client));
  VerifyReport report;
  report.member = member;
  const size_t batch_keys = static_cast<size_t>(std::max(options.batch_keys, 1));
  std::vector<KeyExpectation> batch;
  batch.reserve(batch_keys);
  Status status;
  auto check = [&] {
    if (status.ok() && !batch.empty()) {
      status = CheckBatch(*client, batch, options, &report);
      if (options.on_progress)
        options.on_progress(report.keys_checked);
    }
    batch.clear();
  };
  // The visitor cannot stop early; after a failure it only skips the remaining keys.
  load.ForEachExpectation([&](const KeyExpectation& expectation) {
    if (!status.ok())
      return;
    batch.push_back(expectation);
    if (batch.size() == batch_keys)
      check();
  });
  check();
  WEFT_RETURN_IF_ERROR(status);
  return report;
}

}  // namespace weft::tools
