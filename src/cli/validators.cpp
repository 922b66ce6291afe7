#include "cli/validators.h"

#include <fmt/format.h>

namespace bulwark::cli {
namespace detail {
namespace {

// What every rejection() message starts with: parse_error_text() recognises it.
constexpr const char* kMustBe = "must be ";

}  // namespace

std::string interval_rule(double low, double high, Ends ends) {
  const bool low_open = ends == Ends::Open || ends == Ends::OpenLow;
  const bool high_open = ends == Ends::Open || ends == Ends::OpenHigh;
  return fmt::format("in {}{}, {}{}", low_open ? '(' : '[', low, high, high_open ? ')' : ']');
}

std::string rejection(const std::string& rule, const std::string& input, bool is_number,
                      bool integral) {
  if (is_number) return fmt::format("{}{}, got {}", kMustBe, rule, input);
  return fmt::format("{}{} {}, got '{}'", kMustBe, integral ? "a whole number" : "a number", rule,
                     input);
}

}  // namespace detail

std::string parse_error_text(const CLI::ParseError& error) {
  std::string text = error.what();
  if (dynamic_cast<const CLI::ValidationError*>(&error) == nullptr) return text;
  // CLI11 composes "<name>: <message>" (CLI::ValidationError(name, msg)).
  const auto at = text.find(std::string(": ") + detail::kMustBe);
  const auto name = text.substr(0, at == std::string::npos ? 0 : at);
  if (!name.empty() && name.front() == '-' && name.find(' ') == std::string::npos) {
    text.erase(at, 1);
  }
  return text;
}

}  // namespace bulwark::cli
