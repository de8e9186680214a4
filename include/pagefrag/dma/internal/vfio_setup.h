// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/internal/vfio_setup.h: the pieces of VfioDma setup that need
// no open container: error messages, sysfs look-ups, the IOMMU_GET_INFO
// capability chain parser and the RLIMIT_MEMLOCK check. Kept apart so they
// can be tested on machines without VFIO. Not API.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pagefrag::internal {

// A Status for a failed system call: who failed ("VfioDma(0000:00:04.0)"),
// the step, the path and the errno text, plus a hint for the usual cause. ENOENT/ENODEV ->
// NotFound, EACCES/EPERM -> PermissionDenied, EBUSY -> FailedPrecondition, ENOMEM/ENOSPC ->
// ResourceExhausted, others Internal.
inline absl::Status vfio_sys_error(std::string_view who, std::string_view step,
                                   std::string_view path, int err, std::string_view hint = {}) {
  std::string msg = fmt::format("{}: {} on {} failed: {}", who, step, path, std::strerror(err));
  if (!hint.empty()) msg += fmt::format(" ({})", hint);
  switch (err) {
    case ENOENT:
    case ENODEV:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case EBUSY:
      return absl::FailedPreconditionError(msg);
    case ENOMEM:
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Stores in *name the last path component of the symlink `path`'s target;
// returns 0 or the errno of readlink.
inline int link_basename(const std::string& path, std::string* name) {
  std::string target(4096, '\0');
  const ssize_t n = ::readlink(path.c_str(), target.data(), target.size() - 1);
  if (n < 0) return errno;
  target.resize(static_cast<std::size_t>(n));
  *name = target.substr(target.rfind('/') + 1);
  return 0;
}

// Whether bdf looks like "DDDD:BB:DD.F" (hex digits).
inline bool is_pci_bdf(std::string_view bdf) {
  if (bdf.size() != 12 || bdf[4] != ':' || bdf[7] != ':' || bdf[10] != '.') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11}) {
    const char c = bdf[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

struct IovaRange {
  std::uint64_t first;
  std::uint64_t last;  // inclusive
};

// The IOVA-range capability at `offset` of a GET_INFO reply: the header, a
// u32 count, a u32 pad, then {u64 start, u64 end} pairs (read field by field:
// the uapi struct ends in a zero-length array).
inline absl::StatusOr<std::vector<IovaRange>> parse_range_cap(std::span<const std::byte> reply,
                                                              std::size_t offset) {
  static_assert(sizeof(vfio_iova_range) == 16);
  const std::size_t count_at = offset + sizeof(vfio_info_cap_header);
  const std::size_t ranges_at = count_at + 2 * sizeof(std::uint32_t);
  std::uint32_t count = 0;
  if (ranges_at > reply.size())
    return absl::InvalidArgumentError("IOVA range capability cut short");
  std::memcpy(&count, reply.data() + count_at, sizeof count);
  if (ranges_at + std::size_t{count} * sizeof(vfio_iova_range) > reply.size()) {
    return absl::InvalidArgumentError(
        fmt::format("IOMMU info: {} IOVA ranges do not fit a {}-byte reply", count, reply.size()));
  }
  std::vector<IovaRange> ranges(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    vfio_iova_range r{};
    std::memcpy(&r, reply.data() + ranges_at + i * sizeof r, sizeof r);
    ranges[i] = {r.start, r.end};
  }
  return ranges;
}

// The valid IOVA ranges from a VFIO_IOMMU_GET_INFO reply (the struct and its
// capability chain). No IOVA-range capability: the whole 64-bit space. A
// malformed chain (offsets outside the buffer, loops) is InvalidArgument.
inline absl::StatusOr<std::vector<IovaRange>> parse_iova_ranges(std::span<const std::byte> reply) {
  vfio_iommu_type1_info info{};
  if (reply.size() < sizeof info) return absl::InvalidArgumentError("IOMMU info reply too short");
  std::memcpy(&info, reply.data(), sizeof info);
  std::uint32_t offset = (info.flags & VFIO_IOMMU_INFO_CAPS) != 0 ? info.cap_offset : 0;
  for (int hops = 0; offset != 0; ++hops) {
    vfio_info_cap_header header{};
    if (hops > 64 || offset < sizeof info || offset + sizeof header > reply.size()) {
      return absl::InvalidArgumentError(fmt::format(
          "IOMMU info capability chain: bad offset {} in a {}-byte reply", offset, reply.size()));
    }
    std::memcpy(&header, reply.data() + offset, sizeof header);
    if (header.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) return parse_range_cap(reply, offset);
    offset = header.next;
  }
  return std::vector<IovaRange>{{0, UINT64_MAX}};
}

// OK when pinning `pinned_after` bytes in total stays within RLIMIT_MEMLOCK
// (VFIO type1 charges pinned pages to it unless the caller has
// CAP_IPC_LOCK; root has it, but the check keeps the error readable for
// unprivileged users of a device they own).
inline absl::Status check_memlock(std::string_view who, std::uint64_t pinned_after,
                                  bool privileged) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) != 0) {
    return vfio_sys_error(who, "getrlimit(RLIMIT_MEMLOCK)", "-", errno);
  }
  if (privileged || limit.rlim_cur == RLIM_INFINITY || pinned_after <= limit.rlim_cur) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(
      fmt::format("{}: pinning {} bytes in total exceeds RLIMIT_MEMLOCK ({} bytes); raise it "
                  "(ulimit -l, limits.conf memlock) to at least {} KiB or run with CAP_IPC_LOCK",
                  who, pinned_after, limit.rlim_cur, (pinned_after + 1023) / 1024));
}

}  // namespace pagefrag::internal
