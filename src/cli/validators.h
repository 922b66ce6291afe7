#pragma once
// Checks of numeric options whose errors say what is allowed: "--eps must be >= 0, got -1",
// "--epochs must be > 0, got 0", "--delta must be in (0, 1), got 2". They replace CLI11's
// PositiveNumber, NonNegativeNumber and Range, whose messages print the limits with
// std::to_string ("not in range 0.000000 to 1797693134862315708...") and call the smallest
// positive double 0 ("--epochs 0: not in range 0.000000 to ...").
//
// T is the option's type: an integer option rejects "1.5" as not a whole number; a floating
// point option rejects inf and nan. In the help they read POSITIVE, NONNEGATIVE and
// "in (0, 1)" after the type.

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

namespace bulwark::cli {

/// Which ends belong to an interval: [low, high], (low, high), (low, high] or [low, high).
enum class Ends { Closed, Open, OpenLow, OpenHigh };

namespace detail {

/// "in (0, 1)" and the like, the limits written as a person would ("1e-05", not "0.000010").
std::string interval_rule(double low, double high, Ends ends);

/// The message of a rejected value: "must be <rule>, got <input>", or when the input is not a
/// finite number of the option's kind, "must be a number <rule>, got '<input>'" ("a whole
/// number" for integer options).
std::string rejection(const std::string& rule, const std::string& input, bool is_number,
                      bool integral);

/// A validator that accepts the inputs that read as a finite T for which `allowed` holds.
template <typename T>
CLI::Validator number_rule(const std::string& rule, const std::string& help,
                           std::function<bool(T)> allowed) {
  static_assert(std::is_arithmetic_v<T>, "number validators are for numeric options");
  return CLI::Validator(
      [rule, allowed = std::move(allowed)](std::string& input) -> std::string {
        T value{};
        bool is_number = CLI::detail::lexical_cast(input, value);
        if constexpr (std::is_floating_point_v<T>) {
          is_number = is_number && std::isfinite(value);
        }
        bool negative = false;
        if constexpr (std::is_unsigned_v<T>) {
          // strtoull reads "-1" as the largest value: a negative number is out of range.
          negative = input.find('-') != std::string::npos;
          if (negative) {
            std::int64_t signed_value = 0;
            is_number = CLI::detail::lexical_cast(input, signed_value);
          }
        }
        if (is_number && !negative && allowed(value)) return {};
        return rejection(rule, input, is_number, std::is_integral_v<T>);
      },
      help);
}

}  // namespace detail

/// > 0.
template <typename T>
CLI::Validator positive() {
  return detail::number_rule<T>("> 0", "POSITIVE", [](T value) { return value > 0; });
}

/// >= 0.
template <typename T>
CLI::Validator non_negative() {
  return detail::number_rule<T>(">= 0", "NONNEGATIVE", [](T value) { return value >= 0; });
}

/// Between `low` and `high`, each end included or not as `ends` says.
template <typename T>
CLI::Validator in_interval(T low, T high, Ends ends = Ends::Closed) {
  const auto rule = detail::interval_rule(static_cast<double>(low), static_cast<double>(high), ends);
  const bool low_open = ends == Ends::Open || ends == Ends::OpenLow;
  const bool high_open = ends == Ends::Open || ends == Ends::OpenHigh;
  return detail::number_rule<T>(rule, rule, [=](T value) {
    return (low_open ? value > low : value >= low) && (high_open ? value < high : value <= high);
  });
}

/// The one-line text of a command-line error. CLI11 writes "<option>: <message>" for a
/// rejected value; the messages above continue the option's name as a sentence, so the colon
/// goes: "--eps must be >= 0, got -1".
std::string parse_error_text(const CLI::ParseError& error);

}  // namespace bulwark::cli
