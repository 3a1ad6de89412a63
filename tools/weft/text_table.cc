#include "tools/weft/text_table.h"

#include <algorithm>

namespace weft::tools {

TextTable::TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), columns_.size()));
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render(std::string_view indent) const {
  std::vector<size_t> widths(columns_.size(), 0);
  for (size_t i = 0; i < columns_.size(); ++i) {
    widths[i] = columns_[i].title.size();
    for (const std::vector<std::string>& row : rows_)
      widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  auto render_line = [&](auto cell_text) {
    std::string line(indent);
    for (size_t i = 0; i < columns_.size(); ++i) {
      const std::string& cell = cell_text(i);
      const std::string padding(widths[i] - cell.size(), ' ');
      if (i > 0)
        line += "  ";
      line += columns_[i].align == Align::kRight ? padding + cell : cell + padding;
    }
    while (line.ends_with(' '))
      line.pop_back();
    out += line;
    out += '\n';
  };
  render_line([&](size_t i) -> const std::string& { return columns_[i].title; });
  for (const std::vector<std::string>& row : rows_)
    render_line([&](size_t i) -> const std::string& { return row[i]; });
  return out;
}

}  // namespace weft::tools
