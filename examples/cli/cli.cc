// SPDX-License-Identifier: BSD-3-Clause
// examples/cli/cli.cc: the shared flag parser (see cli.h for the contract).
#include "examples/cli/cli.h"

#include <absl/flags/reflection.h>
#include <absl/strings/numbers.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pagefrag::cli {
namespace {

// Debian builds Abseil with its own string_view type.
absl::string_view as_absl(std::string_view s) { return {s.data(), s.size()}; }

// Abseil registers flags of its own (--flagfile, --helpfull, ...) in every
// binary that links its flag libraries; a tool's flags are the others.
bool is_tool_flag(const absl::CommandLineFlag& flag) {
  return !flag.IsRetired() && flag.Filename().find("absl/") == std::string::npos;
}

// The tool's flag named by a dashed command-line name, or null.
absl::CommandLineFlag* find_tool_flag(std::string_view dashed) {
  if (dashed.empty()) return nullptr;
  std::string id(dashed);
  std::replace(id.begin(), id.end(), '-', '_');
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(as_absl(id));
  return flag != nullptr && is_tool_flag(*flag) ? flag : nullptr;
}

template <class T>
std::optional<std::string> integer_range() {
  if constexpr (std::is_signed_v<T>) {
    return fmt::format("an integer in {}..{}", std::numeric_limits<T>::min(),
                       std::numeric_limits<T>::max());
  } else {
    return fmt::format("an integer in 0..{}", std::numeric_limits<T>::max());
  }
}

// What a flag of this type accepts, for error messages and --help.
std::string expected_value(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "true or false";
  if (flag.IsOfType<std::int32_t>()) return *integer_range<std::int32_t>();
  if (flag.IsOfType<std::uint32_t>()) return *integer_range<std::uint32_t>();
  if (flag.IsOfType<std::int64_t>()) return *integer_range<std::int64_t>();
  if (flag.IsOfType<std::uint64_t>()) return *integer_range<std::uint64_t>();
  if (flag.IsOfType<double>() || flag.IsOfType<float>()) return "a finite number";
  return "a value";
}

std::string value_name(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "";
  if (flag.IsOfType<double>() || flag.IsOfType<float>()) return "=NUMBER";
  if (flag.IsOfType<std::string>()) return "=TEXT";
  return "=N";
}

void set_flag(absl::CommandLineFlag& flag, std::string_view spelled, std::string_view value) {
  std::string ignored;
  if (!flag.ParseFrom(as_absl(value), &ignored)) {
    usage_error(fmt::format("{}={} is invalid: expected {}", spelled, value, expected_value(flag)));
  }
  if (flag.IsOfType<double>()) {
    const auto v = flag.TryGet<double>();
    if (!v || !std::isfinite(*v)) {
      usage_error(fmt::format("{}={} is invalid: expected a finite number", spelled, value));
    }
  }
}

// "expected one of --a, --b (see --help)", for an unknown flag.
std::string known_flags() {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (is_tool_flag(*flag))
      names.push_back(flag_spelling(std::string_view(name.data(), name.size())));
  }
  std::sort(names.begin(), names.end());
  return fmt::format("expected one of {}, --help", fmt::join(names, ", "));
}

struct Arg {
  std::string_view name;  // without the leading dashes
  std::optional<std::string_view> value;
};

// Applies argv[i] (and argv[i + 1] for "--name value"); returns the next index.
int apply_argument(int argc, char** argv, int i) {
  std::string_view text = argv[i];
  if (text.size() < 3 || text.substr(0, 2) != "--") {
    usage_error(fmt::format("unexpected argument '{}': expected --flag=value (see --help)", text));
  }
  text.remove_prefix(2);
  const std::size_t eq = text.find('=');
  Arg arg{text.substr(0, eq), std::nullopt};
  if (eq != std::string_view::npos) arg.value = text.substr(eq + 1);
  const std::string spelled = fmt::format("--{}", arg.name);
  absl::CommandLineFlag* flag = find_tool_flag(arg.name);
  if (flag == nullptr && !arg.value && arg.name.substr(0, 3) == "no-") {
    absl::CommandLineFlag* negated = find_tool_flag(arg.name.substr(3));
    if (negated != nullptr && negated->IsOfType<bool>()) {
      set_flag(*negated, spelled, "false");
      return i + 1;
    }
  }
  if (flag == nullptr) usage_error(fmt::format("unknown flag {}: {}", spelled, known_flags()));
  if (!arg.value && flag->IsOfType<bool>()) {
    set_flag(*flag, spelled, "true");
    return i + 1;
  }
  if (!arg.value) {
    if (i + 1 >= argc) usage_error(fmt::format("{} needs a value: {}=VALUE", spelled, spelled));
    set_flag(*flag, spelled, argv[i + 1]);
    return i + 2;
  }
  set_flag(*flag, spelled, *arg.value);
  return i + 1;
}

}  // namespace

std::string flag_spelling(std::string_view identifier) {
  std::string s = fmt::format("--{}", identifier);
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

std::string usage_text(const ToolInfo& tool) {
  std::string out = fmt::format("usage: {} [flags]\n{}\n", tool.name, tool.synopsis);
  if (!tool.details.empty()) out += fmt::format("\n{}\n", tool.details);
  std::map<std::string, const absl::CommandLineFlag*> flags;  // sorted by name
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (is_tool_flag(*flag))
      flags.emplace(flag_spelling(std::string_view(name.data(), name.size())), flag);
  }
  out += "\nflags:\n";
  for (const auto& [spelled, flag] : flags) {
    const std::string left = spelled + value_name(*flag);
    const std::string def = flag->IsOfType<std::string>()
                                ? fmt::format("\"{}\"", flag->DefaultValue())
                                : flag->DefaultValue();
    out += fmt::format("  {:<26} {} (default: {})\n", left, flag->Help(), def);
  }
  out += "  --help                     print this text and exit 0\n";
  out +=
      "\nexit status: 0 success, 1 the run failed, 2 a usage error (one 'error:' line on "
      "stderr)\n";
  return out;
}

void parse_flags(int argc, char** argv, const ToolInfo& tool) {
  for (int i = 1; i < argc; ++i) {  // --help wins over any error
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage_text(tool).c_str(), stdout);
      std::exit(kExitOk);
    }
  }
  for (int i = 1; i < argc;) i = apply_argument(argc, argv, i);
}

void usage_error(std::string_view message) {
  std::string line(message);
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "error: %s\n", line.c_str());
  std::exit(kExitUsage);
}

void fail(std::string_view message) {
  std::fprintf(stderr, "error: %.*s\n", static_cast<int>(message.size()), message.data());
  std::exit(kExitFailure);
}

void require_range(std::string_view flag, std::uint64_t value, std::uint64_t lo, std::uint64_t hi) {
  if (value < lo || value > hi) {
    usage_error(fmt::format("{}={} is out of range: expected {}..{}", flag, value, lo, hi));
  }
}

void require_power_of_two(std::string_view flag, std::uint64_t value, std::uint64_t lo,
                          std::uint64_t hi) {
  if (value < lo || value > hi || (value & (value - 1)) != 0) {
    usage_error(
        fmt::format("{}={} is invalid: expected a power of two in {}..{}", flag, value, lo, hi));
  }
}

void require_finite(std::string_view flag, double value, double lo, double hi) {
  if (!std::isfinite(value) || value < lo || value > hi) {
    usage_error(
        fmt::format("{}={} is invalid: expected a finite number in {}..{}", flag, value, lo, hi));
  }
}

void require_positive_finite(std::string_view flag, double value, double hi) {
  if (!std::isfinite(value) || !(value > 0) || value > hi) {
    usage_error(
        fmt::format("{}={} is invalid: expected a finite number in (0, {}]", flag, value, hi));
  }
}

std::size_t require_choice(std::string_view flag, std::string_view value,
                           std::initializer_list<std::string_view> choices) {
  std::size_t i = 0;
  for (std::string_view c : choices) {
    if (c == value) return i;
    ++i;
  }
  usage_error(
      fmt::format("{}={} is invalid: expected one of {}", flag, value, fmt::join(choices, ", ")));
}

double parse_probability(std::string_view what, std::string_view text) {
  double p = 0;
  if (!absl::SimpleAtod(as_absl(text), &p) || !std::isfinite(p) || p < 0 || p > 1) {
    usage_error(fmt::format("{}:{} is invalid: expected a probability in 0..1", what, text));
  }
  return p;
}

std::string json_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace pagefrag::cli
