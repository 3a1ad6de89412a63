#include "tools/weft/text_table.h"

#include <gtest/gtest.h>

namespace weft::tools {
namespace {

TEST(TextTableTest, AlignsColumns) {
  TextTable table({{"NAME", TextTable::Align::kLeft}, {"OPS", TextTable::Align::kRight}});
  table.AddRow({"before", "10"});
  table.AddRow({"x", "12345"});
  table.AddRow({"short"});
  EXPECT_EQ(table.Render("  "),
            "  NAME      OPS\n"
            "  before     10\n"
            "  x       12345\n"
            "  short\n");
}

}  // namespace
}  // namespace weft::tools
