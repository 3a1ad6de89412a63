// Reads back every key a WriteLoad wrote from one member and compares it with what the load's
// acknowledgements allow (KeyExpectation::Accepts): the demo's "no acknowledged write lost"
// check, run against every member after the load.
//
// Keys are read with MGET in batches of batch_keys, so memory stays bounded by one batch
// however many keys the load wrote.
//
// Thread safety: VerifyMember only reads the (finished) load; calls for different members may
// run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "weft/base/status.h"

#include "tools/weft/resp_client.h"
#include "tools/weft/write_load.h"

namespace weft::tools {

struct VerifyReport {
  HostPort member;
  int64_t keys_checked = 0;
  // Keys whose value is one the load's acknowledgements do not allow.
  int64_t keys_mismatched = 0;
  // Keys that matched only thanks to a write in doubt (or were unverifiable).
  int64_t keys_matched_in_doubt = 0;
  // The first few mismatches, readable ("key: expected ..., found ...").
  std::vector<std::string> mismatch_examples;

  bool ok() const { return keys_mismatched == 0; }
};

struct VerifyOptions {
  RespClientOptions client;
  int batch_keys = 500;
  size_t examples_max = 10;
  // Called after each batch with the number of keys checked so far (for a progress bar).
  std::function<void(int64_t keys_checked)> on_progress;
};

// REQUIRES: `load` has finished. Fails (Unavailable, DeadlineExceeded, ...) only if the member
// cannot be read; mismatches are reported, not errors.
StatusOr<VerifyReport> VerifyMember(const HostPort& member, const WriteLoad& load,
                                    const VerifyOptions& options = {});

}  // namespace weft::tools
