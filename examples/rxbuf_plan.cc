// SPDX-License-Identifier: BSD-3-Clause
// rxbuf_plan: how big RX buffers are and how much memory a port's RX pools
// hold, for a page size, one or more MTUs, XDP on or off and a policy.
//
//   rxbuf_plan --page-size=65536 --mtu=1500,9000 [--xdp] [--policy=min-waste]
//              [--queue-size=1024] [--queues=16] [--adapter-mtu=9216]
//              [--max-order=4] [--format=table|json]
//
// The table is for people; --format=json prints one object per MTU, one per
// line. Bad input: exit status 2, nothing on stdout, one line on stderr
// ("error: --flag ...") naming the flag and the valid range.
//
// Flags are parsed here rather than with Abseil flags: absl::ParseCommandLine
// exits with status 1 (and prints several lines) on an unknown flag or a bad
// value, and the planner's contract is status 2 with a one-line error.
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "examples/mana/limits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/min_waste_policy.h"

namespace pagefrag {
namespace {

using Platform = LinuxPlatform;
using mana::ManaLimits;

constexpr int kExitBadInput = 2;

constexpr std::string_view kUsage = R"(usage: rxbuf_plan [flags]
  --page-size=BYTES   base page size, a power of two >= 4096 (default: the host's)
  --mtu=N[,N...]      one or more MTUs (default 1500)
  --xdp               an XDP program is attached
  --queue-size=N      RX queue entries, 128..8192 (default 1024)
  --queues=N          RX queues per port, 1..64 (default 16)
  --policy=NAME       kernel, full-page or min-waste (default kernel)
  --adapter-mtu=N     largest frame the adapter accepts (default 9216)
  --max-order=N       largest page order min-waste may use, 0..10 (default 4)
  --format=FORMAT     table or json (default table)
)";

struct PlanOptions {
  std::uint64_t page_size = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  std::vector<std::uint32_t> mtus{1500};
  bool xdp = false;
  std::uint32_t queue_size = ManaLimits::kDefaultRxQueueSize;
  std::uint32_t queues = ManaLimits::kDefaultQueues;
  std::uint32_t adapter_mtu = 9216;
  std::uint32_t max_order = 4;
  std::string policy{KernelRxBufPolicy<Platform>::kName};
  bool json = false;
  bool help = false;
};

// One planned row: the request, the policy's answer and the port's size.
struct PlanRow {
  RxBufRequest req;
  RxBufCfg cfg;
};

absl::Status bad_flag(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("--{} {}", flag, what));
}

absl::StatusOr<std::uint64_t> parse_u64(std::string_view flag, std::string_view text,
                                        std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max) {
    return bad_flag(flag, fmt::format("'{}' is not an integer in 0..{}", text, max));
  }
  return value;
}

absl::StatusOr<std::uint32_t> parse_u32(std::string_view flag, std::string_view text) {
  absl::StatusOr<std::uint64_t> v =
      parse_u64(flag, text, std::numeric_limits<std::uint32_t>::max());
  if (!v.ok()) return v.status();
  return static_cast<std::uint32_t>(*v);
}

absl::StatusOr<std::vector<std::uint32_t>> parse_mtus(std::string_view text) {
  std::vector<std::uint32_t> mtus;
  while (true) {
    const std::size_t comma = text.find(',');
    absl::StatusOr<std::uint32_t> mtu = parse_u32("mtu", text.substr(0, comma));
    if (!mtu.ok()) return mtu.status();
    mtus.push_back(*mtu);
    if (comma == std::string_view::npos) return mtus;
    text.remove_prefix(comma + 1);
  }
}

absl::StatusOr<bool> parse_bool(std::string_view flag, std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return bad_flag(flag, fmt::format("'{}' is invalid: expected true or false", text));
}

absl::Status parse_choice(std::string_view flag, std::string_view text,
                          std::initializer_list<std::string_view> choices, std::string& out) {
  for (std::string_view choice : choices) {
    if (text == choice) {
      out = std::string(text);
      return absl::OkStatus();
    }
  }
  return bad_flag(
      flag, fmt::format("'{}' is invalid: expected one of {}", text, fmt::join(choices, ", ")));
}

constexpr std::array<std::string_view, 10> kFlagNames = {
    "page-size", "mtu",         "xdp",       "queue-size", "queues",
    "policy",    "adapter-mtu", "max-order", "format",     "help"};

// Stores one flag's value; `value` is empty only for a flag given bare.
absl::Status apply_flag(std::string_view name, std::string_view value, bool bare, PlanOptions& o) {
  auto set_u32 = [&](std::uint32_t& field) -> absl::Status {
    absl::StatusOr<std::uint32_t> v = parse_u32(name, value);
    if (v.ok()) field = *v;
    return v.status();
  };
  if (std::find(kFlagNames.begin(), kFlagNames.end(), name) == kFlagNames.end()) {
    return absl::InvalidArgumentError(fmt::format("unknown flag --{}: expected one of --{}", name,
                                                  fmt::join(kFlagNames, ", --")));
  }
  if (name == "xdp") {
    absl::StatusOr<bool> v = bare ? true : parse_bool(name, value);
    if (v.ok()) o.xdp = *v;
    return v.status();
  }
  if (name == "help") {
    o.help = true;
    return absl::OkStatus();
  }
  if (bare) return bad_flag(name, "needs a value: --" + std::string(name) + "=VALUE");
  if (name == "page-size") {
    absl::StatusOr<std::uint64_t> v = parse_u64(name, value, std::uint64_t{1} << 62);
    if (v.ok()) o.page_size = *v;
    return v.status();
  }
  if (name == "mtu") {
    absl::StatusOr<std::vector<std::uint32_t>> v = parse_mtus(value);
    if (v.ok()) o.mtus = *v;
    return v.status();
  }
  if (name == "queue-size") return set_u32(o.queue_size);
  if (name == "queues") return set_u32(o.queues);
  if (name == "adapter-mtu") return set_u32(o.adapter_mtu);
  if (name == "max-order") return set_u32(o.max_order);
  if (name == "policy")
    return parse_choice(name, value, {"kernel", "full-page", "min-waste"}, o.policy);
  if (name == "format") {
    std::string format;
    absl::Status s = parse_choice(name, value, {"table", "json"}, format);
    o.json = format == "json";
    return s;
  }
  return absl::InternalError(fmt::format("flag --{} has no handler", name));
}

// Flags as --name=value, --name value, or bare --xdp / --help.
absl::StatusOr<PlanOptions> parse_flags(int argc, char** argv) {
  PlanOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      return absl::InvalidArgumentError(
          fmt::format("unexpected argument '{}': rxbuf_plan takes only --flags", arg));
    }
    arg.remove_prefix(2);
    const std::size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const bool takes_value = name != "xdp" && name != "help";
    const bool bare = eq == std::string_view::npos && (!takes_value || i + 1 == argc);
    std::string_view value = eq != std::string_view::npos ? arg.substr(eq + 1) : "";
    if (eq == std::string_view::npos && takes_value && i + 1 < argc) value = argv[++i];
    if (absl::Status s = apply_flag(name, value, bare, o); !s.ok()) return s;
  }
  if (absl::Status s = mana::validate_num_queues("--queues", o.queues); !s.ok()) return s;
  if (absl::Status s = mana::validate_rx_queue_size("--queue-size", o.queue_size); !s.ok()) {
    return s;
  }
  return o;
}

// Configures req with the policy among Policies whose kName is name.
template <RxBufPolicy... Policies>
absl::StatusOr<RxBufCfg> configure_named(std::string_view name, const RxBufRequest& req) {
  absl::StatusOr<RxBufCfg> cfg = absl::InvalidArgumentError(fmt::format("no policy {}", name));
  auto try_one = [&](std::string_view policy_name, auto configure) {
    if (name != policy_name) return false;
    cfg = configure(req);
    return true;
  };
  const bool found = (try_one(Policies::kName, &Policies::configure) || ...);
  PAGEFRAG_CHECK(found, "policy {} was accepted by the flag parser but has no model", name);
  return cfg;
}

// A library error names an RxBufRequest field first ("mtu 40 is ..."); the
// user typed a flag, so name the flag ("--mtu 40 is ...").
std::string as_flag_error(const absl::Status& status) {
  std::string message(status.message());
  const std::size_t space = message.find(' ');
  std::string field = message.substr(0, space);
  for (char& c : field) c = c == '_' ? '-' : c;
  return "--" + field + message.substr(space);
}

absl::StatusOr<std::vector<PlanRow>> plan(const PlanOptions& o) {
  std::vector<PlanRow> rows;
  for (std::uint32_t mtu : o.mtus) {
    const RxBufRequest req{.page_size = o.page_size,
                           .mtu = mtu,
                           .xdp = o.xdp,
                           .adapter_mtu = o.adapter_mtu,
                           .queue_size = o.queue_size,
                           .max_order = o.max_order};
    absl::StatusOr<RxBufCfg> cfg =
        configure_named<KernelRxBufPolicy<Platform>, FullPageRxBufPolicy<Platform>,
                        MinWasteRxBufPolicy<Platform>>(o.policy, req);
    if (!cfg.ok()) return absl::InvalidArgumentError(as_flag_error(cfg.status()));
    rows.push_back({req, *cfg});
  }
  return rows;
}

std::string json_line(const PlanOptions& o, const PlanRow& r) {
  const RxBufCfg& c = r.cfg;
  const std::uint64_t queue_bytes = c.queue_bytes(r.req.queue_size);
  return fmt::format(
      R"({{"page_size":{},"mtu":{},"xdp":{},"policy":"{}","kind":"{}","datasize":{},)"
      R"("alloc_size":{},"headroom":{},"frag_count":{},"order":{},"truesize":{},)"
      R"("pool_size":{},"queue_bytes":{},"port_bytes":{}}})",
      c.page_size, r.req.mtu, r.req.xdp, o.policy, c.kind, c.datasize, c.alloc_size, c.headroom,
      c.frag_count, c.order, c.truesize, c.pool_size(r.req.queue_size), queue_bytes,
      queue_bytes * o.queues);
}

// 1536 -> "1.5 KiB", 2101248 -> "2.0 MiB".
std::string human_bytes(std::uint64_t bytes) {
  constexpr double kKiB = 1024.0;
  constexpr double kMiB = 1024.0 * 1024.0;
  if (static_cast<double>(bytes) < kMiB) return fmt::format("{:.1f} KiB", bytes / kKiB);
  return fmt::format("{:.1f} MiB", bytes / kMiB);
}

constexpr std::size_t kColumns = 16;
using TableRow = std::array<std::string, kColumns>;

TableRow table_header(const PlanOptions& o) {
  return {"page",
          "mtu",
          "xdp",
          "policy",
          "kind",
          "datasize",
          "alloc",
          "headroom",
          "bufs/block",
          "order",
          "truesize",
          "pool",
          fmt::format("queue({})", o.queue_size),
          fmt::format("port(x{})", o.queues),
          "density",
          "waste"};
}

// density: packet bytes per byte a buffer consumes (datasize / truesize).
// waste: share of a full queue pool that never holds packet data.
TableRow table_row(const PlanOptions& o, const PlanRow& r) {
  const RxBufCfg& c = r.cfg;
  const std::uint32_t qs = r.req.queue_size;
  const std::uint64_t queue_bytes = c.queue_bytes(qs);
  const double density = 100.0 * c.datasize / c.truesize;
  const double waste =
      100.0 * (1.0 - static_cast<double>(std::uint64_t{qs} * c.datasize) / queue_bytes);
  return {human_bytes(c.page_size),        fmt::format("{}", r.req.mtu),
          r.req.xdp ? "yes" : "no",        o.policy,
          std::string(to_string(c.kind)),  fmt::format("{}", c.datasize),
          fmt::format("{}", c.alloc_size), fmt::format("{}", c.headroom),
          fmt::format("{}", c.frag_count), fmt::format("{}", c.order),
          fmt::format("{}", c.truesize),   fmt::format("{}", c.pool_size(qs)),
          human_bytes(queue_bytes),        human_bytes(queue_bytes * o.queues),
          fmt::format("{:.1f}%", density), fmt::format("{:.1f}%", waste)};
}

// Text columns (policy, kind, xdp) align left, numbers right.
void print_table(const std::vector<TableRow>& rows) {
  std::array<std::size_t, kColumns> width{};
  for (const TableRow& row : rows) {
    for (std::size_t i = 0; i < kColumns; ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const TableRow& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < kColumns; ++i) {
      const bool left = i == 2 || i == 3 || i == 4;
      if (i > 0) line += "  ";
      line +=
          left ? fmt::format("{:<{}}", row[i], width[i]) : fmt::format("{:>{}}", row[i], width[i]);
    }
    fmt::print("{}\n", line);
  }
}

void print_plan(const PlanOptions& o, const std::vector<PlanRow>& rows) {
  if (o.json) {
    for (const PlanRow& r : rows) fmt::print("{}\n", json_line(o, r));
    return;
  }
  std::vector<TableRow> table{table_header(o)};
  for (const PlanRow& r : rows) table.push_back(table_row(o, r));
  print_table(table);
}

int run(int argc, char** argv) {
  absl::StatusOr<PlanOptions> options = parse_flags(argc, argv);
  if (options.ok() && options->help) {
    fmt::print("{}", kUsage);
    return 0;
  }
  absl::StatusOr<std::vector<PlanRow>> rows =
      options.ok() ? plan(*options) : absl::StatusOr<std::vector<PlanRow>>(options.status());
  if (!rows.ok()) {
    fmt::print(stderr, "error: {}\n", std::string(rows.status().message()));
    return kExitBadInput;
  }
  print_plan(*options, *rows);
  return 0;
}

}  // namespace
}  // namespace pagefrag

int main(int argc, char** argv) { return pagefrag::run(argc, argv); }
