// TextTable: aligned columns for the CLI's tables (status, load reports).
//
//   PHASE    SECONDS   OPS/S  P99_US
//   before      3.00   10000     412
//
// Columns are separated by two spaces; a column is left- or right-aligned (numbers read best
// right-aligned). Cells are plain text; a row shorter than the header is padded with blanks.
//
// Thread safety: a value; not thread-safe to mutate concurrently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace weft::tools {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit TextTable(std::vector<Column> columns);

  void AddRow(std::vector<std::string> cells);

  // The header and every row, each line starting with `indent` and ending with '\n'; no
  // trailing blanks.
  std::string Render(std::string_view indent = "") const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace weft::tools
