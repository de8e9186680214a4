// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/dma/vfio_dma.h: VfioDma, the DmaBackend of real user-space drivers.
//
// VfioDma programs the IOMMU through Linux VFIO's type1 container API for one
// PCI device (given by its address, e.g. "0000:00:04.0"): it opens the
// container (/dev/vfio/vfio), checks the API version and the type1v2
// extension, opens the device's IOMMU group (/dev/vfio/<group>), checks the
// group is viable, attaches it, selects the type1v2 IOMMU, reads the valid
// IOVA ranges from the IOMMU_GET_INFO capability chain and opens the device.
// map() pins and maps page-aligned CPU ranges with VFIO_IOMMU_MAP_DMA at
// IOVAs it allocates only inside the valid ranges and below the device's DMA
// mask (a parameter: many devices address fewer than 64 bits; QEMU's edu has
// 28), never at IOVA 0, checking RLIMIT_MEMLOCK first; unmap() uses
// VFIO_IOMMU_UNMAP_DMA. Others may map into the same container (its fd is
// container_fd()): map() steps around their mappings. The bookkeeping is
// internal::VfioMappings, shared with the C API's backend over a caller's
// container. Mapping is per page or per region: a PremappedRegion over a provider is
// the efficient way (one IOTLB-friendly mapping instead of one per page).
//
// Syncs are no-ops: VFIO targets cache-coherent x86 here, where the IOMMU
// neither bounces nor needs cache maintenance (kFeatures.needs_sync is
// false). A port to a non-coherent platform would have to flush/invalidate.
//
// Every setup failure is a Status naming the step, the path and the errno
// text, with the usual cause (no VFIO, not root, group not viable, device
// not bound to vfio-pci, memlock limit, IOVA space or mask exhausted).
//
// Thread contract: create on a setup path; map/unmap from any thread (one
// internal mutex; slow paths only); syncs from any thread (no state).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "pagefrag/base/iova.h"
#include "pagefrag/base/pool_attachments.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/internal/vfio_mappings.h"
#include "pagefrag/dma/internal/vfio_setup.h"

namespace pagefrag {

struct VfioDmaParams {
  // PCI address of the device, "DDDD:BB:DD.F", bound to vfio-pci.
  std::string bdf;
  // Bits of address the device can drive: 12..64. IOVAs stay below 2^bits.
  unsigned dma_mask_bits = 64;
  // Where to look (tests point these at fakes).
  std::string sysfs_devices = "/sys/bus/pci/devices";
  std::string vfio_dir = "/dev/vfio";
};

class VfioDma {
 public:
  static constexpr DmaFeatures kFeatures{.needs_sync = false, .identity_iova = false};

  // Runs every setup step; the first failure is returned. Setup path.
  static absl::StatusOr<std::unique_ptr<VfioDma>> create(const VfioDmaParams& params) {
    if (absl::Status bad = check_params(params); !bad.ok()) return bad;
    std::unique_ptr<VfioDma> dma(new VfioDma(params));
    using Step = absl::Status (VfioDma::*)();
    for (Step step : {&VfioDma::find_group, &VfioDma::check_driver, &VfioDma::open_container,
                      &VfioDma::open_group, &VfioDma::attach_iommu, &VfioDma::read_iova_ranges,
                      &VfioDma::open_device}) {
      if (absl::Status failed = (dma.get()->*step)(); !failed.ok()) return failed;
    }
    return dma;
  }

  VfioDma(const VfioDma&) = delete;
  VfioDma& operator=(const VfioDma&) = delete;
  // Unmaps what is still mapped, closes the device, group and container.
  ~VfioDma() {
    if (maps_ != nullptr) maps_->unmap_all();  // best effort; closing releases all
    for (int fd : {device_, group_fd_, container_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  // Pins and maps the pages holding `cpu` for `dir`; the Iova keeps cpu's
  // offset in its page. Errors: InvalidArgument (empty), ResourceExhausted
  // (RLIMIT_MEMLOCK, no IOVA room below the mask), or the MAP_DMA errno.
  // Any thread; slow path.
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection dir) {
    return maps_->map(cpu, dir);
  }

  // Unmaps what map() returned `iova` for. Errors: NotFound (no such
  // mapping), InvalidArgument (len or dir differ from map()), or the
  // UNMAP_DMA errno. Any thread; slow path.
  absl::Status unmap(Iova iova, std::size_t len, DmaDirection dir) {
    return maps_->unmap(iova, len, dir);
  }

  // No-ops: x86 with VFIO is cache-coherent and never bounces. Any thread.
  void sync_for_device(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}
  void sync_for_cpu(Iova /*iova*/, std::size_t /*len*/, DmaDirection /*dir*/) noexcept {}

  // The device's VFIO fd (config space, BARs; owned by this object), its
  // container's fd (owned; other users may map into it: map() steps around
  // their mappings), its IOMMU group, the valid IOVA ranges the IOMMU
  // reported, bytes pinned.
  int device_fd() const noexcept { return device_; }
  int container_fd() const noexcept { return container_; }
  int group() const noexcept { return group_; }
  const std::vector<internal::IovaRange>& iova_ranges() const noexcept { return maps_->ranges(); }
  std::uint64_t pinned_bytes() const { return maps_->pinned_bytes(); }
  std::size_t live_mappings() const { return maps_->live_mappings(); }

  // Checks params without touching the system: a well-formed BDF and a mask
  // of 12..64 bits.
  static absl::Status check_params(const VfioDmaParams& params) {
    if (!internal::is_pci_bdf(params.bdf)) {
      return absl::InvalidArgumentError(
          fmt::format("VfioDma: bdf '{}' is invalid; expected a PCI address DDDD:BB:DD.F such as "
                      "0000:00:04.0",
                      params.bdf));
    }
    if (params.dma_mask_bits < 12 || params.dma_mask_bits > 64) {
      return absl::InvalidArgumentError(
          fmt::format("VfioDma({}): dma_mask_bits {} is invalid; expected 12..64", params.bdf,
                      params.dma_mask_bits));
    }
    return absl::OkStatus();
  }

  // The pools using this backend (base/pool_attachments.h): destroying it
  // while one is attached aborts, naming the pools. Any thread.
  PoolAttachments& pool_attachments() noexcept { return pool_attachments_; }

 private:
  explicit VfioDma(VfioDmaParams params) : params_(std::move(params)) {}

  std::string who() const { return fmt::format("VfioDma({})", params_.bdf); }
  std::string device_path() const { return params_.sysfs_devices + "/" + params_.bdf; }
  std::string container_path() const { return params_.vfio_dir + "/vfio"; }
  std::string group_path() const { return fmt::format("{}/{}", params_.vfio_dir, group_); }

  absl::Status find_group() {
    if (::access(device_path().c_str(), F_OK) != 0) {
      return internal::vfio_sys_error(who(), "looking up the PCI device", device_path(), errno,
                                      "no such PCI device on this machine");
    }
    const std::string link = device_path() + "/iommu_group";
    std::string name;
    if (int err = internal::link_basename(link, &name); err != 0) {
      return absl::FailedPreconditionError(fmt::format(
          "VfioDma({}): reading the IOMMU group link {} failed: {} (no IOMMU group: enable the "
          "IOMMU, e.g. boot with intel_iommu=on)",
          params_.bdf, link, std::strerror(err)));
    }
    group_ = std::stoi(name);
    return absl::OkStatus();
  }

  absl::Status check_driver() {
    const std::string link = device_path() + "/driver";
    std::string driver;
    const int err = internal::link_basename(link, &driver);
    if (err == 0 && driver == "vfio-pci") return absl::OkStatus();
    return absl::FailedPreconditionError(fmt::format(
        "VfioDma({}): device is bound to {} ({}); expected vfio-pci: echo vfio-pci > {}/"
        "driver_override, unbind the old driver, echo {} > /sys/bus/pci/drivers_probe",
        params_.bdf, err == 0 ? driver : "no driver", link, device_path(), params_.bdf));
  }

  absl::Status open_container() {
    container_ = ::open(container_path().c_str(), O_RDWR | O_CLOEXEC);
    if (container_ < 0) {
      return internal::vfio_sys_error(who(), "opening the VFIO container", container_path(), errno,
                                      "is the vfio module loaded, and are you root?");
    }
    const int version = ::ioctl(container_, VFIO_GET_API_VERSION);
    if (version != VFIO_API_VERSION) {
      return version < 0
                 ? internal::vfio_sys_error(who(), "VFIO_GET_API_VERSION", container_path(), errno)
                 : absl::FailedPreconditionError(
                       fmt::format("VfioDma({}): VFIO API version {} on {}; expected {}",
                                   params_.bdf, version, container_path(), VFIO_API_VERSION));
    }
    if (::ioctl(container_, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
      return absl::FailedPreconditionError(fmt::format(
          "VfioDma({}): VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU) on {}: not supported (load "
          "vfio_iommu_type1)",
          params_.bdf, container_path()));
    }
    return absl::OkStatus();
  }

  absl::Status open_group() {
    group_fd_ = ::open(group_path().c_str(), O_RDWR | O_CLOEXEC);
    if (group_fd_ < 0) {
      return internal::vfio_sys_error(who(), "opening the IOMMU group", group_path(), errno,
                                      "EBUSY: another process holds the group");
    }
    vfio_group_status status{.argsz = sizeof status, .flags = 0};
    if (::ioctl(group_fd_, VFIO_GROUP_GET_STATUS, &status) != 0) {
      return internal::vfio_sys_error(who(), "VFIO_GROUP_GET_STATUS", group_path(), errno);
    }
    if ((status.flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
      return absl::FailedPreconditionError(
          fmt::format("VfioDma({}): IOMMU group {} ({}) is not viable; expected every device in "
                      "/sys/kernel/iommu_groups/{}/devices bound to vfio-pci or to no driver",
                      params_.bdf, group_, group_path(), group_));
    }
    return absl::OkStatus();
  }

  absl::Status attach_iommu() {
    if (::ioctl(group_fd_, VFIO_GROUP_SET_CONTAINER, &container_) != 0) {
      return internal::vfio_sys_error(who(), "VFIO_GROUP_SET_CONTAINER", group_path(), errno);
    }
    if (::ioctl(container_, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) != 0) {
      return internal::vfio_sys_error(who(), "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)", container_path(),
                                      errno);
    }
    return absl::OkStatus();
  }

  absl::Status read_iova_ranges() {
    maps_ = std::make_unique<internal::VfioMappings>(container_, who(), container_path(),
                                                     params_.dma_mask_bits);
    return maps_->read_info();
  }

  absl::Status open_device() {
    device_ = ::ioctl(group_fd_, VFIO_GROUP_GET_DEVICE_FD, params_.bdf.c_str());
    if (device_ < 0) {
      return internal::vfio_sys_error(who(), "VFIO_GROUP_GET_DEVICE_FD", group_path(), errno);
    }
    return absl::OkStatus();
  }

  VfioDmaParams params_;
  int group_ = -1;
  int container_ = -1;
  int group_fd_ = -1;
  int device_ = -1;
  std::unique_ptr<internal::VfioMappings> maps_;  // from read_iova_ranges() on
  PoolAttachments pool_attachments_{"VfioDma"};
};

static_assert(DmaBackend<VfioDma>);

}  // namespace pagefrag
