// SPDX-License-Identifier: BSD-3-Clause
// bench/queue_memory: the held-bytes high-water mark of one RX queue (1024
// live 1856-byte fragments on 64 KiB pages, 10^6 allocations, FIFO frees) for
// owner, remote and mixed frees; see bench/queue_memory.h.
//
// Usage: queue_memory [--json] [--allocs=N]
//   --json      one JSON object on stdout:
//               {"queue_bytes_64k_owner_frees": ..., "..._remote_frees": ...,
//                "..._mixed_frees": ...}; nothing else on stdout
//   --allocs=N  allocations per run (default 1000000)
// Exit: 0 success, 1 an allocation failed, 2 usage error.
#include "bench/queue_memory.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

int usage_error(std::string_view what) {
  fmt::print(stderr, "error: {}; usage: queue_memory [--json] [--allocs=N]\n", what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using pagefrag::bench::FreeMode;
  bool json = false;
  pagefrag::bench::QueueMemoryParams q;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help") {
      fmt::print(
          "usage: queue_memory [--json] [--allocs=N]\n"
          "Held-bytes high-water of one RX queue for owner, remote and mixed frees.\n");
      return 0;
    }
    if (arg == "--json") {
      json = true;
    } else if (arg.starts_with("--allocs=")) {
      const std::string_view v = arg.substr(9);
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), q.allocs);
      if (ec != std::errc{} || end != v.data() + v.size() || q.allocs == 0 ||
          q.allocs > 1'000'000'000) {
        return usage_error(fmt::format("--allocs={}: expected an integer in 1..1000000000", v));
      }
    } else {
      return usage_error(fmt::format("unknown argument {}", arg));
    }
  }
  std::string out = "{";
  for (FreeMode m : {FreeMode::kOwner, FreeMode::kRemote, FreeMode::kMixed}) {
    auto hw = pagefrag::bench::queue_memory_high_water(m, q);
    if (!hw.ok()) {
      fmt::print(stderr, "error: {} frees: {}\n", to_string(m), hw.status().ToString());
      return 1;
    }
    if (!json)
      fmt::print("queue_bytes_64k_{}_frees {} ({} pages)\n", to_string(m), *hw, *hw / q.page_size);
    out += fmt::format("{}\"queue_bytes_64k_{}_frees\": {}", out.size() > 1 ? ", " : "",
                       to_string(m), *hw);
  }
  if (json) fmt::print("{}}}\n", out);
  return 0;
}
