// SPDX-License-Identifier: BSD-3-Clause
// Tests of VfioDma's error paths on a machine without VFIO: every failure
// names the step, the path and the errno text. A fake sysfs tree and /dev/vfio
// directory drive each step to fail in turn. The success path runs in the VM
// test (tests/vm).
#include "pagefrag/dma/vfio_dma.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pagefrag {
namespace {

namespace fs = std::filesystem;

// A throw-away directory holding a fake sysfs device and a fake /dev/vfio.
class FakeSystem {
 public:
  FakeSystem() {
    std::string tmpl = (fs::temp_directory_path() / "vfio-fake-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "devices" / kBdf);
    fs::create_directories(root_ / "dev");
  }
  ~FakeSystem() { fs::remove_all(root_); }

  void link(const std::string& name, const fs::path& target) {
    fs::create_directory_symlink(target, root_ / "devices" / kBdf / name);
  }
  // The device in IOMMU group 7, bound to `driver`.
  void bind(const std::string& driver) {
    link("iommu_group", "../../kernel/iommu_groups/7");
    link("driver", "../../bus/pci/drivers/" + driver);
  }
  void add_dev_file(const std::string& name) { std::ofstream(root_ / "dev" / name) << "x"; }

  VfioDmaParams params(unsigned mask = 64) const {
    return {.bdf = kBdf,
            .dma_mask_bits = mask,
            .sysfs_devices = (root_ / "devices").string(),
            .vfio_dir = (root_ / "dev").string()};
  }
  static constexpr const char* kBdf = "0000:00:04.0";

 private:
  fs::path root_;
};

std::string error_of(const VfioDmaParams& params, absl::StatusCode code) {
  auto made = VfioDma::create(params);
  REQUIRE_FALSE(made.ok());
  CHECK(made.status().code() == code);
  return std::string(made.status().message());
}

bool has(const std::string& msg, const std::string& part) {
  const bool found = msg.find(part) != std::string::npos;
  if (!found) MESSAGE(msg, " lacks ", part);
  return found;
}

TEST_CASE("parameters are checked before the system is touched") {
  auto bad_bdf = error_of({.bdf = "00:04.0"}, absl::StatusCode::kInvalidArgument);
  CHECK(has(bad_bdf, "bdf '00:04.0' is invalid; expected a PCI address DDDD:BB:DD.F"));
  CHECK(has(error_of({.bdf = "0000:00:0g.0"}, absl::StatusCode::kInvalidArgument), "0000:00:0g.0"));
  auto mask =
      error_of({.bdf = "0000:00:04.0", .dma_mask_bits = 65}, absl::StatusCode::kInvalidArgument);
  CHECK(has(mask, "dma_mask_bits 65 is invalid; expected 12..64"));
  CHECK(has(
      error_of({.bdf = "0000:00:04.0", .dma_mask_bits = 11}, absl::StatusCode::kInvalidArgument),
      "dma_mask_bits 11"));
}

TEST_CASE("a device that does not exist: NotFound naming the sysfs path") {
  auto msg = error_of({.bdf = "0000:ff:1f.7"}, absl::StatusCode::kNotFound);
  CHECK(has(msg, "/sys/bus/pci/devices/0000:ff:1f.7"));
  CHECK(has(msg, "No such file or directory"));
}

TEST_CASE("no IOMMU group: FailedPrecondition saying to enable the IOMMU") {
  FakeSystem sys;
  auto msg = error_of(sys.params(), absl::StatusCode::kFailedPrecondition);
  CHECK(has(msg, "0000:00:04.0/iommu_group"));
  CHECK(has(msg, "No such file or directory"));
  CHECK(has(msg, "intel_iommu=on"));
}

TEST_CASE("a device bound to another driver, or none: FailedPrecondition with the fix") {
  FakeSystem sys;
  sys.link("iommu_group", "../../kernel/iommu_groups/7");
  auto unbound = error_of(sys.params(), absl::StatusCode::kFailedPrecondition);
  CHECK(has(unbound, "bound to no driver"));
  CHECK(has(unbound, "expected vfio-pci"));
  sys.link("driver", "../../bus/pci/drivers/e1000e");
  auto other = error_of(sys.params(), absl::StatusCode::kFailedPrecondition);
  CHECK(has(other, "bound to e1000e"));
  CHECK(has(other, "driver_override"));
}

TEST_CASE("no VFIO container: NotFound naming the path and the likely cause") {
  FakeSystem sys;
  sys.bind("vfio-pci");
  auto msg = error_of(sys.params(), absl::StatusCode::kNotFound);
  CHECK(has(msg, "opening the VFIO container on"));
  CHECK(has(msg, "/dev/vfio"));
  CHECK(has(msg, "No such file or directory"));
  CHECK(has(msg, "vfio module loaded"));
}

TEST_CASE("a container that is not VFIO: the API-version ioctl fails with its errno") {
  FakeSystem sys;
  sys.bind("vfio-pci");
  sys.add_dev_file("vfio");
  auto msg = error_of(sys.params(), absl::StatusCode::kInternal);
  CHECK(has(msg, "VFIO_GET_API_VERSION on"));
  CHECK(has(msg, "Inappropriate ioctl for device"));
}

TEST_CASE("the real /dev/vfio/vfio of this machine, if any, reports a clear step") {
  // On machines without VFIO this is the 'no container' path with real paths.
  std::error_code ec;
  if (!fs::exists("/dev/vfio/vfio", ec)) {
    FakeSystem sys;
    sys.bind("vfio-pci");
    VfioDmaParams p = sys.params();
    p.vfio_dir = "/dev/vfio";
    CHECK(has(error_of(p, absl::StatusCode::kNotFound), "/dev/vfio/vfio"));
  }
}

TEST_CASE("RLIMIT_MEMLOCK: pinning beyond the limit is ResourceExhausted with the fix") {
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_MEMLOCK, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 64 * 1024;  // lowering the soft limit needs no privilege
  REQUIRE(::setrlimit(RLIMIT_MEMLOCK, &low) == 0);
  CHECK(internal::check_memlock("VfioDma(0000:00:04.0)", 64 * 1024, false).ok());
  const absl::Status over =
      internal::check_memlock("VfioDma(0000:00:04.0)", 64 * 1024 + 4096, false);
  CHECK(over.code() == absl::StatusCode::kResourceExhausted);
  const std::string msg(over.message());
  CHECK(has(msg, "pinning 69632 bytes in total exceeds RLIMIT_MEMLOCK (65536 bytes)"));
  CHECK(has(msg, "ulimit -l"));
  CHECK(internal::check_memlock("VfioDma(0000:00:04.0)", 1u << 30, true).ok());  // CAP_IPC_LOCK
  REQUIRE(::setrlimit(RLIMIT_MEMLOCK, &saved) == 0);
}

// A GET_INFO reply laid out as the kernel writes it: the info struct, then
// a chain of capabilities.
std::vector<std::byte> info_reply(
    const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges, bool with_other_cap_first) {
  std::vector<std::byte> buf(sizeof(vfio_iommu_type1_info));
  auto put = [&buf](const auto& value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    buf.insert(buf.end(), p, p + sizeof value);
  };
  vfio_iommu_type1_info info{};
  info.flags = VFIO_IOMMU_INFO_CAPS;
  info.cap_offset = static_cast<std::uint32_t>(buf.size());
  if (with_other_cap_first) {  // e.g. the DMA-available capability (id 3)
    put(vfio_info_cap_header{
        .id = 3, .version = 1, .next = static_cast<std::uint32_t>(buf.size() + 8 + 4 + 4)});
    put(std::uint32_t{65535});
    put(std::uint32_t{0});
  }
  put(vfio_info_cap_header{.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, .version = 1, .next = 0});
  put(static_cast<std::uint32_t>(ranges.size()));
  put(std::uint32_t{0});
  for (auto [first, last] : ranges) put(vfio_iova_range{.start = first, .end = last});
  info.argsz = static_cast<std::uint32_t>(buf.size());
  std::memcpy(buf.data(), &info, sizeof info);
  return buf;
}

TEST_CASE("the IOVA-range capability is found in the chain and parsed") {
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> qemu = {{0, 0xfedfffff},
                                                                     {0xfef00000, 0x7fffffffff}};
  for (bool other_first : {false, true}) {
    auto ranges = internal::parse_iova_ranges(info_reply(qemu, other_first));
    REQUIRE(ranges.ok());
    REQUIRE(ranges->size() == 2);
    CHECK((*ranges)[0].first == 0);
    CHECK((*ranges)[0].last == 0xfedfffff);
    CHECK((*ranges)[1].first == 0xfef00000);
    CHECK((*ranges)[1].last == 0x7fffffffff);
  }
  std::vector<std::byte> bare(sizeof(vfio_iommu_type1_info));  // no capabilities
  auto all = internal::parse_iova_ranges(bare);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK((*all)[0].last == UINT64_MAX);
  std::vector<std::byte> cut = info_reply(qemu, false);
  cut.resize(cut.size() - 8);  // the last range cut short
  CHECK(internal::parse_iova_ranges(cut).status().code() == absl::StatusCode::kInvalidArgument);
  std::vector<std::byte> loop = info_reply(qemu, false);
  auto* info = reinterpret_cast<vfio_iommu_type1_info*>(loop.data());
  info->cap_offset = 4096;  // points outside the reply
  CHECK(internal::parse_iova_ranges(loop).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("errno maps to a canonical code and the message keeps step, path and text") {
  const absl::Status busy = internal::vfio_sys_error(
      "VfioDma(0000:00:04.0)", "opening the IOMMU group", "/dev/vfio/7", EBUSY, "held elsewhere");
  CHECK(busy.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(busy.message()) ==
        "VfioDma(0000:00:04.0): opening the IOMMU group on /dev/vfio/7 failed: Device or resource "
        "busy (held elsewhere)");
  CHECK(internal::vfio_sys_error("b", "s", "p", EACCES).code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(internal::vfio_sys_error("b", "s", "p", ENOMEM).code() ==
        absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace pagefrag
