#include "tools/weft/progress_bar.h"

#include <stdio.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "weft/base/clock.h"

namespace weft::tools {
namespace {

TEST(HumanUnitsTest, Counts) {
  EXPECT_EQ(HumanCount(0), "0");
  EXPECT_EQ(HumanCount(999), "999");
  EXPECT_EQ(HumanCount(1000), "1.00k");
  EXPECT_EQ(HumanCount(12'345), "12.3k");
  EXPECT_EQ(HumanCount(123'456), "123k");
  EXPECT_EQ(HumanCount(999'999), "1.00M");  // rounds up into the next unit, never "1000k"
  EXPECT_EQ(HumanCount(1'234'567), "1.23M");
  EXPECT_EQ(HumanCount(3'000'000'000), "3.00G");
  EXPECT_EQ(HumanCount(-1500), "-1.50k");
}

TEST(HumanUnitsTest, Bytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.00 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.50 KiB");
  EXPECT_EQ(HumanBytes(10LL << 20), "10.0 MiB");
  EXPECT_EQ(HumanBytes(300LL << 20), "300 MiB");
  EXPECT_EQ(HumanBytes((1LL << 30) - 1), "1.00 GiB");
  EXPECT_EQ(HumanBytes(5LL << 40), "5.00 TiB");
}

TEST(HumanUnitsTest, Durations) {
  EXPECT_EQ(HumanDuration(-1), "?");
  EXPECT_EQ(HumanDuration(0), "0ms");
  EXPECT_EQ(HumanDuration(850), "850ms");
  EXPECT_EQ(HumanDuration(12'345), "12.3s");
  EXPECT_EQ(HumanDuration(307'000), "5m07s");
  EXPECT_EQ(HumanDuration(7'380'000), "2h03m");
  EXPECT_EQ(HumanDuration(3LL * 86'400'000 + 4 * 3'600'000), "3d04h");
}

TEST(ProgressLineTest, ShowsEverythingKnown) {
  ProgressState state;
  state.label = "load";
  state.count_noun = "keys";
  state.done = 250'000;
  state.total = 1'000'000;
  state.rate_per_s = 50'000;
  state.eta_ms = 15'000;
  state.detail = "3 errors";
  EXPECT_EQ(FormatProgressLine(state, 10),
            "load [##........]  25% 250k/1.00M keys  50.0k keys/s  ETA 15.0s  3 errors");
}

TEST(ProgressLineTest, LeavesOutWhatIsUnknown) {
  ProgressState state;
  state.label = "join r";
  state.unit = ProgressUnit::kBytes;
  state.done = 3LL << 20;
  EXPECT_EQ(FormatProgressLine(state, 4), "join r [....] 3.00 MiB");
  EXPECT_EQ(FormatProgressLine(state, 0), "join r 3.00 MiB");
  state.rate_per_s = 1 << 20;
  EXPECT_EQ(FormatProgressLine(state, 0), "join r 3.00 MiB  1.00 MiB/s");
}

TEST(ProgressLineTest, ClampsOvershoot) {
  ProgressState state;
  state.label = "x";
  state.done = 120;
  state.total = 100;
  EXPECT_EQ(FormatProgressLine(state, 4), "x [####] 100% 120/100");
}

// Captures what a ProgressBar writes.
class CapturedOutput {
 public:
  CapturedOutput() : file_(open_memstream(&buffer_, &size_)) {}
  ~CapturedOutput() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string Text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

ProgressState Done(int64_t done) {
  ProgressState state;
  state.label = "p";
  state.done = done;
  state.total = 100;
  return state;
}

TEST(ProgressBarTest, RedrawsInPlaceAtMostEveryInterval) {
  ManualClock clock;
  CapturedOutput output;
  ProgressBar::Options options;
  options.in_place = true;
  options.bar_width = 0;
  ProgressBar bar(output.file(), clock, options);
  bar.Update(Done(1));  // first update always draws
  clock.AdvanceMs(50);
  bar.Update(Done(2));  // too soon
  clock.AdvanceMs(60);
  bar.Update(Done(3));  // 110 ms after the first draw
  bar.Finish(Done(100));
  const std::string text = output.Text();
  EXPECT_EQ(text.find("2/100"), std::string::npos);
  EXPECT_NE(text.find("\rp   1% 1/100"), std::string::npos) << text;
  EXPECT_NE(text.find("\rp   3% 3/100"), std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("\x1b[K\n")) << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line, ended once
}

TEST(ProgressBarTest, PrintsPlainLinesEveryTwoSecondsWhenNotATerminal) {
  ManualClock clock;
  CapturedOutput output;
  ProgressBar::Options options;
  options.bar_width = 0;
  ProgressBar bar(output.file(), clock, options);
  for (int i = 0; i < 50; ++i) {
    bar.Update(Done(i));
    clock.AdvanceMs(100);  // 5 s in all
  }
  const std::string text = output.Text();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;  // at 0 s, 2 s, 4 s
}

TEST(ProgressBarTest, EstimatesRateAndEtaWhenNotGiven) {
  ManualClock clock;
  CapturedOutput output;
  ProgressBar::Options options;
  options.bar_width = 0;
  ProgressBar bar(output.file(), clock, options);
  ProgressState state;
  state.label = "p";
  state.done = 0;
  state.total = 1000;
  bar.Update(state);
  clock.AdvanceMs(1000);
  state.done = 100;
  bar.Finish(state);  // 100 per second, 900 left
  EXPECT_NE(output.Text().find("100/s  ETA 9.0s"), std::string::npos) << output.Text();
}

}  // namespace
}  // namespace weft::tools
