// SPDX-License-Identifier: BSD-3-Clause
// examples/afxdp/progress.h: a tiny shared-memory channel from driver to sender.
//
// The live test's driver and sender run in different network namespaces but
// share the file system. The driver publishes, in a small file both map, that
// its socket is bound and how many datagrams it has verified; the sender
// keeps at most a window of datagrams unverified, so a receiver that is
// descheduled for a moment never finds its fill ring empty and the test's
// loss is deterministic (zero). Single writer (the driver's owner thread,
// plain atomic stores), any number of readers.
#pragma once

#include <absl/status/statusor.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace afxdp {

// Plain words in the shared page, accessed only through publish()/observe()
// (std::atomic_ref: the page is zero-filled by the kernel, never constructed).
struct Progress {
  alignas(8) std::uint64_t ready;     // 1 once the driver's socket is bound
  alignas(8) std::uint64_t verified;  // distinct datagrams verified intact
  alignas(8) std::uint64_t finished;  // 1 once the driver stopped receiving
};
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

// Writer side: a release store (no read-modify-write). Driver thread.
inline void publish(std::uint64_t& word, std::uint64_t value) {
  std::atomic_ref<std::uint64_t>(word).store(value, std::memory_order_release);
}
// Reader side. Any thread or process.
inline std::uint64_t observe(std::uint64_t& word) {
  return std::atomic_ref<std::uint64_t>(word).load(std::memory_order_acquire);
}

// Maps `path` (created and sized if needed). The mapping lives until exit.
inline absl::StatusOr<Progress*> map_progress(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0 || ::ftruncate(fd, 4096) != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "progress file '{}': {}; expected a writable path", path, std::strerror(errno)));
  }
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    return absl::InternalError(fmt::format("mmap of '{}': {}", path, std::strerror(errno)));
  }
  return static_cast<Progress*>(p);
}

}  // namespace afxdp
