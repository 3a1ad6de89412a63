// A one-line progress display for long work in the weft CLI (a join's image, a load run).
//
//   join default [###########.........]  55% 1.10 GiB/2.00 GiB  350 MiB/s  ETA 2.6s  1.2M entries
//
// On a terminal the line is redrawn in place ('\r', then erase to the end of the line) at most
// every 100 ms. When the output is not a terminal (CI logs, pipes) a plain line is printed at
// most every 2 s instead, so logs stay readable. The formatting functions are free functions
// so that they can be tested without a terminal.
//
// Thread safety: a ProgressBar is not thread-safe; one thread updates it. The free functions
// are pure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "weft/base/clock.h"

namespace weft::tools {

// "999", "1.23k", "12.3k", "123k", "1.23M", ... (three significant digits, SI steps of 1000).
std::string HumanCount(int64_t count);
// "512 B", "1.00 KiB", "12.3 MiB", "123 GiB" (three significant digits, steps of 1024).
std::string HumanBytes(int64_t bytes);
// "850ms", "12.3s", "5m07s", "2h03m", "3d04h"; "?" for a negative duration.
std::string HumanDuration(int64_t ms);

enum class ProgressUnit { kCount, kBytes };

// What one progress line shows. Unknown quantities are negative (or 0 for `total`) and are
// left out of the line.
struct ProgressState {
  std::string label;
  ProgressUnit unit = ProgressUnit::kCount;
  // Noun after counts ("keys", "entries"); unused for bytes.
  std::string count_noun;
  int64_t done = 0;
  // <= 0: unknown; then there is no percentage, the bar is empty and ETA needs eta_ms.
  int64_t total = 0;
  // Units of `unit` per second; < 0: unknown (ProgressBar estimates it from its updates).
  double rate_per_s = -1;
  // < 0: unknown (derived from total and rate when both are known).
  int64_t eta_ms = -1;
  // Free text at the end of the line.
  std::string detail;
};

// Formats `state` as one line without '\r' or '\n'. `bar_width` is the number of cells between
// the brackets (0: no bar).
std::string FormatProgressLine(const ProgressState& state, int bar_width);

class ProgressBar {
 public:
  struct Options {
    // Redraw in place (true for a terminal) or print plain lines.
    bool in_place = false;
    int64_t in_place_interval_ms = 100;
    int64_t plain_interval_ms = 2000;
    int bar_width = 24;
  };

  // True when `out` is a terminal.
  static bool IsTerminal(std::FILE* out);

  // REQUIRES: `out` and `clock` outlive the bar.
  ProgressBar(std::FILE* out, const Clock& clock, Options options);

  // Shows `state` if the previous line is older than the interval (the first one always shows).
  void Update(ProgressState state);
  // Shows `state` now and ends the line; the next Update starts a fresh line.
  void Finish(ProgressState state);

 private:
  // Fills in rate and ETA when the caller left them unknown.
  void Estimate(ProgressState* state, int64_t now_us);
  void Draw(const ProgressState& state, bool final);

  std::FILE* const out_;
  const Clock& clock_;
  const Options options_;
  int64_t last_draw_us_ = -1;
  // Smoothed rate estimate from successive updates.
  int64_t last_sample_us_ = -1;
  int64_t last_sample_done_ = 0;
  double rate_estimate_per_s_ = -1;
};

}  // namespace weft::tools
