// SPDX-License-Identifier: BSD-3-Clause
// examples/cli/cli.h: one command-line convention for every pagefrag tool.
//
// Tools declare their flags with ABSL_FLAG (underscored identifiers, as
// Abseil requires) and call cli::parse_flags() first thing in main(). The
// command line spells every flag with dashes (--page-size=4096 for
// FLAGS_page_size); the helper maps dashes to underscores and sets each flag
// through absl::CommandLineFlag::ParseFrom, so Abseil's own ParseCommandLine
// (which exits 1 on --help and prints several ERROR lines) is never used.
//
// The convention:
//   --help, -h        usage on stdout, generated from the flags' help
//                     strings and defaults, exit 0
//   usage error       exactly one line "error: ..." on stderr, exit 2 (an
//                     unknown flag, a malformed or out-of-range value, NaN or
//                     infinity where a finite number is wanted, overflow)
//   runtime failure   exit 1
//   --json            exactly one JSON document on stdout; everything meant
//                     for people goes to stderr
//
// Accepted forms: --name=value, --name value (non-boolean flags), bare
// --name (boolean: true) and --no-name (boolean: false). Positional
// arguments are usage errors: no tool takes any.
#pragma once

#include <absl/flags/commandlineflag.h>
#include <absl/flags/flag.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace pagefrag::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the run failed a check or could not run
inline constexpr int kExitUsage = 2;    // the command line was wrong

// What --help prints above the generated flag list.
struct ToolInfo {
  std::string_view name;      // e.g. "rxbuf_plan"
  std::string_view synopsis;  // one line after "usage: NAME [flags]"
  std::string_view details;   // optional paragraph(s), may be empty
};

// Parses argv into the program's ABSL_FLAGs. Returns only when every
// argument was valid; otherwise prints usage (--help, exit 0) or one error
// line (exit 2) and exits.
void parse_flags(int argc, char** argv, const ToolInfo& tool);

// The --help text (exposed for tests and for tools that print it elsewhere).
std::string usage_text(const ToolInfo& tool);

// Prints "error: <message>" on stderr and exits 2. For checks after parsing
// (ranges, choices, combinations).
[[noreturn]] void usage_error(std::string_view message);

// Prints "error: <message>" on stderr and exits 1 (a runtime failure).
[[noreturn]] void fail(std::string_view message);

// The dashed spelling of a flag identifier: "page_size" -> "--page-size".
std::string flag_spelling(std::string_view identifier);

// Range checks after parsing; each calls usage_error() naming the flag, the
// value and what was expected.
void require_range(std::string_view flag, std::uint64_t value, std::uint64_t lo, std::uint64_t hi);
void require_power_of_two(std::string_view flag, std::uint64_t value, std::uint64_t lo,
                          std::uint64_t hi);
// Rejects NaN and infinities as well as values outside [lo, hi].
void require_finite(std::string_view flag, double value, double lo, double hi);
// The same for a duration or rate that must be above 0: a finite value in (0, hi].
void require_positive_finite(std::string_view flag, double value, double hi);
// Returns the index of `value` in `choices` or reports a usage error.
std::size_t require_choice(std::string_view flag, std::string_view value,
                           std::initializer_list<std::string_view> choices);

// A strictly parsed probability "0.25" for sub-options such as
// --inject=alloc:0.25: finite and in [0, 1], or a usage error naming `what`.
double parse_probability(std::string_view what, std::string_view text);

// Minimal JSON string escaping for report writers.
std::string json_escape(std::string_view text);

}  // namespace pagefrag::cli

// Flag names as the user spells them, for error messages written in tools:
// PAGEFRAG_FLAG_NAME(page_size) -> "--page-size".
#define PAGEFRAG_FLAG_NAME(name) ::pagefrag::cli::flag_spelling(#name)
