#include "tools/weft/resp_reply.h"

#include <algorithm>
#include <charconv>

#include "weft/base/strings.h"

namespace weft::tools {
namespace {

// Recursive-descent parser over one buffer. `position_` only moves forward; on "need more" the
// whole parse is abandoned and the caller retries with more bytes.
class ReplyParser {
 public:
  ReplyParser(std::string_view input, const ReplyLimits& limits) : input_(input), limits_(limits) {}

  // Returns std::nullopt when the input ends before the reply does.
  StatusOr<std::optional<RespReply>> Parse(int depth) {
    if (depth > limits_.depth_max)
      return Malformed("arrays nested too deeply");
    std::optional<std::string_view> line = NextLine();
    if (!line.has_value()) {
      if (input_.size() - position_ > limits_.line_bytes_max)
        return Malformed("line too long");
      return std::optional<RespReply>();
    }
    if (line->empty())
      return Malformed("empty line");
    if (line->size() > limits_.line_bytes_max)
      return Malformed("line too long");
    const char kind = line->front();
    const std::string_view rest = line->substr(1);
    RespReply reply;
    switch (kind) {
      case '+':
        reply.type = RespReply::Type::kSimpleString;
        reply.text = std::string(rest);
        return std::optional<RespReply>(std::move(reply));
      case '-':
        reply.type = RespReply::Type::kError;
        reply.text = std::string(rest);
        return std::optional<RespReply>(std::move(reply));
      case ':':
        reply.type = RespReply::Type::kInteger;
        if (!ParseInteger(rest, &reply.integer))
          return Malformed(StrCat("bad integer '", rest, "'"));
        return std::optional<RespReply>(std::move(reply));
      case '$':
        return ParseBulk(rest);
      case '*':
        return ParseArray(rest, depth);
      default:
        return Malformed(StrCat("unknown reply type byte '", std::string_view(&kind, 1), "'"));
    }
  }

  size_t position() const { return position_; }

 private:
  StatusOr<std::optional<RespReply>> ParseBulk(std::string_view header) {
    int64_t length = 0;
    if (!ParseInteger(header, &length) || length < -1 || length > limits_.bulk_bytes_max)
      return Malformed(StrCat("bad bulk length '", header, "'"));
    RespReply reply;
    if (length == -1)
      return std::optional<RespReply>(std::move(reply));  // kNull
    const size_t needed = static_cast<size_t>(length) + 2;
    if (input_.size() - position_ < needed)
      return std::optional<RespReply>();
    if (input_.substr(position_ + length, 2) != "\r\n")
      return Malformed("bulk string not followed by CRLF");
    reply.type = RespReply::Type::kBulkString;
    reply.text = std::string(input_.substr(position_, length));
    position_ += needed;
    return std::optional<RespReply>(std::move(reply));
  }

  StatusOr<std::optional<RespReply>> ParseArray(std::string_view header, int depth) {
    int64_t count = 0;
    if (!ParseInteger(header, &count) || count < -1 || count > limits_.array_elements_max)
      return Malformed(StrCat("bad array length '", header, "'"));
    RespReply reply;
    if (count == -1)
      return std::optional<RespReply>(std::move(reply));  // kNull (a null array)
    reply.type = RespReply::Type::kArray;
    // Reserve only what the bytes present could hold, so a hostile count cannot allocate much.
    reply.elements.reserve(
        static_cast<size_t>(std::min<int64_t>(count, (input_.size() - position_) / 3)));
    for (int64_t i = 0; i < count; ++i) {
      WEFT_ASSIGN_OR_RETURN(std::optional<RespReply> element, Parse(depth + 1));
      if (!element.has_value())
        return std::optional<RespReply>();
      reply.elements.push_back(std::move(*element));
    }
    return std::optional<RespReply>(std::move(reply));
  }

  // The next CRLF-terminated line (without CRLF), or nullopt if no CRLF is buffered yet.
  std::optional<std::string_view> NextLine() {
    const size_t end = input_.find("\r\n", position_);
    if (end == std::string_view::npos)
      return std::nullopt;
    std::string_view line = input_.substr(position_, end - position_);
    position_ = end + 2;
    return line;
  }

  static bool ParseInteger(std::string_view text, int64_t* value) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
    return !text.empty() && error == std::errc() && end == text.data() + text.size();
  }

  static Status Malformed(std::string_view what) {
    return absl::DataLossError(StrCat("malformed RESP reply: ", what));
  }

  std::string_view input_;
  const ReplyLimits& limits_;
  size_t position_ = 0;
};

void AppendBulk(std::string* out, std::string_view arg) {
  StrAppend(out, "$", arg.size(), "\r\n", arg, "\r\n");
}

}  // namespace

StatusOr<std::optional<RespReply>> ParseReply(std::string_view input, size_t* consumed,
                                              const ReplyLimits& limits) {
  ReplyParser parser(input, limits);
  WEFT_ASSIGN_OR_RETURN(std::optional<RespReply> reply, parser.Parse(0));
  if (reply.has_value())
    *consumed = parser.position();
  return reply;
}

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  StrAppend(out, "*", args.size(), "\r\n");
  for (std::string_view arg : args)
    AppendBulk(out, arg);
}

void AppendCommand(std::string* out, const std::vector<std::string>& args) {
  StrAppend(out, "*", args.size(), "\r\n");
  for (const std::string& arg : args)
    AppendBulk(out, arg);
}

std::string RespReply::DebugString() const {
  constexpr size_t kShown = 80;
  auto cut = [](const std::string& s) {
    return s.size() <= kShown ? s : StrCat(std::string_view(s).substr(0, kShown), "...");
  };
  switch (type) {
    case Type::kSimpleString:
      return StrCat("+", cut(text));
    case Type::kError:
      return StrCat("-", cut(text));
    case Type::kInteger:
      return StrCat(":", integer);
    case Type::kBulkString:
      return StrCat("$", text.size(), " ", cut(text));
    case Type::kNull:
      return "(nil)";
    case Type::kArray:
      return StrCat("*", elements.size(), " [...]");
  }
  return "?";
}

}  // namespace weft::tools
