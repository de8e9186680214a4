// SPDX-License-Identifier: BSD-3-Clause
// rxbuf_plan: how big RX buffers are and how much memory a port's RX pools
// hold, for a page size, one or more MTUs, XDP on or off and a policy.
//
//   rxbuf_plan --page-size=65536 --mtu=1500,9000 [--xdp] [--policy=min-waste]
//              [--queue-size=1024] [--queues=16] [--adapter-mtu=9216]
//              [--max-order=4] [--format=table|json] [--json]
//
// The table is for people; --json prints one JSON document (an array with one
// object per MTU); --format=json prints the same objects as JSON Lines (one
// per line), which scripts/rxbuf_policy_table.sh and bench/report.py read.
// Flags follow the tools' convention (examples/cli/cli.h): --help exits 0;
// bad input exits 2 with nothing on stdout and one line on stderr
// ("error: --flag ...") naming the flag and the valid range.
#include <absl/flags/flag.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/numbers.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "examples/cli/cli.h"
#include "examples/mana/limits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/min_waste_policy.h"

ABSL_FLAG(std::uint64_t, page_size, static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)),
          "base page size, a power of two >= 4096 (default: the host's)");
ABSL_FLAG(std::string, mtu, "1500", "one or more MTUs, comma separated");
ABSL_FLAG(bool, xdp, false, "an XDP program is attached");
ABSL_FLAG(std::uint32_t, queue_size, 1024,
          "RX queue entries: the MANA driver's rule, a power of two in 128..8192");
ABSL_FLAG(std::uint32_t, queues, 16, "RX queues per port, 1..64");
ABSL_FLAG(std::string, policy, "kernel", "kernel, full-page or min-waste");
ABSL_FLAG(std::uint32_t, adapter_mtu, 9216, "largest frame the adapter accepts");
ABSL_FLAG(std::uint32_t, max_order, 4, "largest page order min-waste may use, 0..10");
ABSL_FLAG(std::string, format, "table", "table or json (JSON Lines: one object per MTU)");
ABSL_FLAG(bool, json, false, "print one JSON document: an array with one object per MTU");

namespace pagefrag {
namespace {

using Platform = LinuxPlatform;
using mana::ManaLimits;

struct PlanOptions {
  std::uint64_t page_size = 4096;
  std::vector<std::uint32_t> mtus{1500};
  bool xdp = false;
  std::uint32_t queue_size = ManaLimits::kDefaultRxQueueSize;
  std::uint32_t queues = ManaLimits::kDefaultQueues;
  std::uint32_t adapter_mtu = 9216;
  std::uint32_t max_order = 4;
  std::string policy{KernelRxBufPolicy<Platform>::kName};
  enum class Output { kTable, kJsonLines, kJson } output = Output::kTable;
};

// One planned row: the request, the policy's answer and the port's size.
struct PlanRow {
  RxBufRequest req;
  RxBufCfg cfg;
};

std::vector<std::uint32_t> parse_mtus(std::string_view text) {
  std::vector<std::uint32_t> mtus;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    std::uint32_t mtu = 0;
    if (!absl::SimpleAtoi(absl::string_view(item.data(), item.size()), &mtu)) {
      cli::usage_error(
          fmt::format("--mtu '{}' is not an integer in 0..{}", item, ~std::uint32_t{0}));
    }
    mtus.push_back(mtu);
    if (comma == std::string_view::npos) return mtus;
    text.remove_prefix(comma + 1);
  }
}

PlanOptions parse_options(int argc, char** argv) {
  cli::parse_flags(argc, argv,
                   {.name = "rxbuf_plan",
                    .synopsis = "How big RX buffers are and how much memory a port's RX pools "
                                "hold, per policy, page size, MTU and XDP setting.",
                    .details = ""});
  PlanOptions o;
  o.page_size = absl::GetFlag(FLAGS_page_size);
  o.mtus = parse_mtus(absl::GetFlag(FLAGS_mtu));
  o.xdp = absl::GetFlag(FLAGS_xdp);
  o.queue_size = absl::GetFlag(FLAGS_queue_size);
  // The driver's rule, not only the planner's range: a plan for a queue the
  // driver would refuse is no plan.
  cli::require_power_of_two("--queue-size", o.queue_size, ManaLimits::kMinRxQueueSize,
                            ManaLimits::kMaxRxQueueSize);
  o.queues = absl::GetFlag(FLAGS_queues);
  cli::require_range("--queues", o.queues, 1, ManaLimits::kMaxQueues);
  o.adapter_mtu = absl::GetFlag(FLAGS_adapter_mtu);
  o.max_order = absl::GetFlag(FLAGS_max_order);
  o.policy = absl::GetFlag(FLAGS_policy);
  cli::require_choice("--policy", o.policy, {"kernel", "full-page", "min-waste"});
  const std::size_t format =
      cli::require_choice("--format", absl::GetFlag(FLAGS_format), {"table", "json"});
  o.output = absl::GetFlag(FLAGS_json) ? PlanOptions::Output::kJson
             : format == 1             ? PlanOptions::Output::kJsonLines
                                       : PlanOptions::Output::kTable;
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
  switch (o.output) {
    case PlanOptions::Output::kJsonLines:
      for (const PlanRow& r : rows) fmt::print("{}\n", json_line(o, r));
      return;
    case PlanOptions::Output::kJson: {
      std::vector<std::string> objects;
      for (const PlanRow& r : rows) objects.push_back(json_line(o, r));
      fmt::print("[{}]\n", fmt::join(objects, ",\n "));
      return;
    }
    case PlanOptions::Output::kTable:
      break;
  }
  std::vector<TableRow> table{table_header(o)};
  for (const PlanRow& r : rows) table.push_back(table_row(o, r));
  print_table(table);
}

int run(int argc, char** argv) {
  const PlanOptions options = parse_options(argc, argv);
  absl::StatusOr<std::vector<PlanRow>> rows = plan(options);
  if (!rows.ok()) cli::usage_error(std::string(rows.status().message()));
  print_plan(options, *rows);
  return cli::kExitOk;
}

}  // namespace
}  // namespace pagefrag

int main(int argc, char** argv) { return pagefrag::run(argc, argv); }
