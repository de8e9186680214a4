// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/memory/mapped_region.h: an owned anonymous mapping.
//
// MappedRegion reserves one range of virtual memory with mmap, naturally
// aligned to a requested power of two, marks it MADV_DONTFORK (a fork must
// not copy-on-write pages a device may be writing), and unmaps it on
// destruction. Memory providers keep their pages in one (HeapProvider,
// HugepageProvider, afxdp::UmemProvider); a provider outside the library may
// too. Movable, not copyable. Thread contract: none needed (no shared state).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "pagefrag/base/bits.h"

namespace pagefrag {

class MappedRegion {
 public:
  MappedRegion() noexcept = default;
  MappedRegion(MappedRegion&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  MappedRegion& operator=(MappedRegion&& other) noexcept {
    if (this != &other) {
      reset();
      base_ = std::exchange(other.base_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion() { reset(); }

  // Maps `bytes` of private anonymous memory aligned to `align` (a power of
  // two). `extra_flags` are OR-ed into the mmap flags (e.g. MAP_HUGETLB, in
  // which case the kernel aligns to the hugepage and `align` must not exceed
  // it). `who` prefixes error messages. Errors: Internal/ResourceExhausted
  // with the failing call and errno text.
  static absl::StatusOr<MappedRegion> map_anonymous(std::size_t bytes, std::size_t align,
                                                    int extra_flags, std::string_view who) {
    const bool kernel_aligns = (extra_flags & MAP_HUGETLB) != 0;
    const std::size_t span = kernel_aligns ? bytes : bytes + align;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (raw == MAP_FAILED) return mmap_error(errno, bytes, who);
    MappedRegion region;
    region.base_ = static_cast<std::byte*>(raw);
    region.bytes_ = span;
    if (!kernel_aligns) region.trim_to(bytes, align);
    if (::madvise(region.base_, region.bytes_, MADV_DONTFORK) != 0) {
      return absl::InternalError(fmt::format("{}: madvise(MADV_DONTFORK, {} bytes) failed: {}", who,
                                             region.bytes_, std::strerror(errno)));
    }
    return region;
  }

  std::byte* data() const noexcept { return base_; }
  std::size_t size() const noexcept { return bytes_; }

 private:
  static absl::Status mmap_error(int err, std::size_t bytes, std::string_view who) {
    std::string msg =
        fmt::format("{}: mmap of {} bytes failed: {}", who, bytes, std::strerror(err));
    return err == ENOMEM ? absl::ResourceExhaustedError(msg) : absl::InternalError(msg);
  }

  // Unmaps the slack before and after the aligned `bytes`.
  void trim_to(std::size_t bytes, std::size_t align) noexcept {
    const auto start = reinterpret_cast<std::uintptr_t>(base_);
    const std::uintptr_t aligned = align_up(start, align);
    const std::size_t head = aligned - start;
    const std::size_t tail = bytes_ - head - bytes;
    if (head != 0) ::munmap(base_, head);
    if (tail != 0) ::munmap(base_ + head + bytes, tail);
    base_ += head;
    bytes_ = bytes;
  }

  void reset() noexcept {
    if (base_ != nullptr) ::munmap(base_, bytes_);
    base_ = nullptr;
    bytes_ = 0;
  }

  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace pagefrag
