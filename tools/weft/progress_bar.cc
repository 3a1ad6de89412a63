#include "tools/weft/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace weft::tools {
namespace {

// Three significant digits of value / step^k with the largest k that keeps it >= 1.
std::string ScaleThreeDigits(double value, double step, const char* const* suffixes,
                             int suffix_count, std::string_view separator) {
  int index = 0;
  while (index + 1 < suffix_count && std::fabs(value) >= step) {
    value /= step;
    ++index;
  }
  // Rounding may carry to 1000 (999.6k -> "1000k"); move to the next suffix instead.
  if (index + 1 < suffix_count && std::fabs(value) >= step - 0.5) {
    value /= step;
    ++index;
  }
  const double magnitude = std::fabs(value);
  const int decimals = magnitude < 9.995 ? 2 : (magnitude < 99.95 ? 1 : 0);
  return fmt::format("{:.{}f}{}{}", value, decimals, separator, suffixes[index]);
}

}  // namespace

std::string HumanCount(int64_t count) {
  if (count > -1000 && count < 1000)
    return std::to_string(count);
  static const char* const kSuffixes[] = {"", "k", "M", "G", "T", "P"};
  return ScaleThreeDigits(static_cast<double>(count), 1000.0, kSuffixes, 6, "");
}

std::string HumanBytes(int64_t bytes) {
  if (bytes > -1024 && bytes < 1024)
    return fmt::format("{} B", bytes);
  static const char* const kSuffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  return ScaleThreeDigits(static_cast<double>(bytes), 1024.0, kSuffixes, 6, " ");
}

std::string HumanDuration(int64_t ms) {
  if (ms < 0)
    return "?";
  if (ms < 1000)
    return fmt::format("{}ms", ms);
  if (ms < 60'000)
    return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  const int64_t seconds = ms / 1000;
  if (seconds < 3600)
    return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400)
    return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

std::string FormatProgressLine(const ProgressState& state, int bar_width) {
  const bool known_total = state.total > 0;
  const double fraction =
      known_total
          ? std::clamp(static_cast<double>(state.done) / static_cast<double>(state.total), 0.0, 1.0)
          : 0.0;
  auto amount = [&](int64_t value) {
    return state.unit == ProgressUnit::kBytes ? HumanBytes(value) : HumanCount(value);
  };
  const std::string noun =
      state.unit == ProgressUnit::kCount && !state.count_noun.empty() ? " " + state.count_noun : "";

  std::string line = state.label;
  if (bar_width > 0) {
    const int filled = static_cast<int>(fraction * bar_width);
    line += fmt::format(" [{}{}]", std::string(filled, '#'), std::string(bar_width - filled, '.'));
  }
  if (known_total)
    line += fmt::format(" {:3}%", static_cast<int>(fraction * 100.0));
  line += " " + amount(state.done);
  if (known_total)
    line += "/" + amount(state.total);
  line += noun;
  if (state.rate_per_s >= 0) {
    line += "  " + amount(static_cast<int64_t>(std::llround(state.rate_per_s))) +
            (state.unit == ProgressUnit::kBytes ? "/s" : noun + "/s");
  }
  if (state.eta_ms >= 0)
    line += "  ETA " + HumanDuration(state.eta_ms);
  if (!state.detail.empty())
    line += "  " + state.detail;
  return line;
}

bool ProgressBar::IsTerminal(std::FILE* out) {
  return isatty(fileno(out)) == 1;
}

ProgressBar::ProgressBar(std::FILE* out, const Clock& clock, Options options)
    : out_(out), clock_(clock), options_(options) {}

void ProgressBar::Update(ProgressState state) {
  const int64_t now_us = clock_.NowMonotonicUs();
  Estimate(&state, now_us);
  const int64_t interval_us =
      (options_.in_place ? options_.in_place_interval_ms : options_.plain_interval_ms) * 1000;
  if (last_draw_us_ >= 0 && now_us - last_draw_us_ < interval_us)
    return;
  last_draw_us_ = now_us;
  Draw(state, /*final=*/false);
}

void ProgressBar::Finish(ProgressState state) {
  const int64_t now_us = clock_.NowMonotonicUs();
  Estimate(&state, now_us);
  Draw(state, /*final=*/true);
  last_draw_us_ = -1;
  last_sample_us_ = -1;
  rate_estimate_per_s_ = -1;
}

void ProgressBar::Estimate(ProgressState* state, int64_t now_us) {
  if (last_sample_us_ >= 0 && now_us > last_sample_us_) {
    const double seconds = static_cast<double>(now_us - last_sample_us_) / 1e6;
    const double instant = static_cast<double>(state->done - last_sample_done_) / seconds;
    // Exponential smoothing with a ~2 s time constant: steady enough to read, quick to follow.
    const double weight = rate_estimate_per_s_ < 0 ? 1.0 : 1.0 - std::exp(-seconds / 2.0);
    rate_estimate_per_s_ = weight * instant + (1.0 - weight) * std::max(rate_estimate_per_s_, 0.0);
  }
  if (last_sample_us_ < 0 || now_us > last_sample_us_) {
    last_sample_us_ = now_us;
    last_sample_done_ = state->done;
  }
  if (state->rate_per_s < 0)
    state->rate_per_s = rate_estimate_per_s_;
  if (state->eta_ms < 0 && state->total > 0 && state->rate_per_s > 0) {
    const double left = static_cast<double>(std::max<int64_t>(state->total - state->done, 0));
    state->eta_ms = static_cast<int64_t>(left / state->rate_per_s * 1000.0);
  }
}

void ProgressBar::Draw(const ProgressState& state, bool final) {
  const std::string line = FormatProgressLine(state, options_.bar_width);
  if (options_.in_place) {
    // "\x1b[K" erases what a longer previous line left to the right.
    std::fprintf(out_, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace weft::tools
