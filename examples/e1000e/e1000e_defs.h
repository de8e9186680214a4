// SPDX-License-Identifier: BSD-3-Clause
// examples/e1000e/e1000e_defs.h: the Intel 82574L (e1000e) registers and
// legacy descriptors the driver uses, written from Intel's 82574 GbE
// Controller Family datasheet (sections 10 registers, 7.1 receive and 7.2
// transmit descriptors). Layouts are static_assert'ed.
#pragma once

#include <cstdint>

namespace e1000e {

// PCI IDs.
inline constexpr std::uint16_t kVendorIntel = 0x8086;
inline constexpr std::uint16_t kDevice82574L = 0x10d3;

// BAR0 register offsets.
namespace reg {
inline constexpr std::uint32_t kCtrl = 0x0000;
inline constexpr std::uint32_t kStatus = 0x0008;
inline constexpr std::uint32_t kImc = 0x00d8;
inline constexpr std::uint32_t kRctl = 0x0100;
inline constexpr std::uint32_t kTctl = 0x0400;
inline constexpr std::uint32_t kTipg = 0x0410;
inline constexpr std::uint32_t kRdbal = 0x2800;
inline constexpr std::uint32_t kRdbah = 0x2804;
inline constexpr std::uint32_t kRdlen = 0x2808;
inline constexpr std::uint32_t kRdh = 0x2810;
inline constexpr std::uint32_t kRdt = 0x2818;
inline constexpr std::uint32_t kTdbal = 0x3800;
inline constexpr std::uint32_t kTdbah = 0x3804;
inline constexpr std::uint32_t kTdlen = 0x3808;
inline constexpr std::uint32_t kTdh = 0x3810;
inline constexpr std::uint32_t kTdt = 0x3818;
inline constexpr std::uint32_t kRal0 = 0x5400;
inline constexpr std::uint32_t kRah0 = 0x5404;
}  // namespace reg

inline constexpr std::uint32_t kCtrlSlu = 1u << 6;
inline constexpr std::uint32_t kCtrlRst = 1u << 26;
inline constexpr std::uint32_t kStatusLu = 1u << 1;

inline constexpr std::uint32_t kRctlEn = 1u << 1;
inline constexpr std::uint32_t kRctlUpe = 1u << 3;
inline constexpr std::uint32_t kRctlMpe = 1u << 4;
inline constexpr std::uint32_t kRctlBam = 1u << 15;
inline constexpr std::uint32_t kRctlBsex = 1u << 25;
inline constexpr std::uint32_t kRctlSecrc = 1u << 26;

inline constexpr std::uint32_t kTctlEn = 1u << 1;
inline constexpr std::uint32_t kTctlPsp = 1u << 3;
inline constexpr std::uint32_t kTctlCt = 0x0fu << 4;
inline constexpr std::uint32_t kTctlCold = 0x3fu << 12;

// Legacy receive descriptor (7.1.4): the driver writes addr; the device
// writes length, csum, status, errors, special.
struct RxDesc {
  std::uint64_t addr;
  std::uint16_t length;
  std::uint16_t csum;
  std::uint8_t status;
  std::uint8_t errors;
  std::uint16_t special;
};
static_assert(sizeof(RxDesc) == 16);

inline constexpr std::uint8_t kRxStatusDd = 1u << 0;
inline constexpr std::uint8_t kRxStatusEop = 1u << 1;
// Errors that make a frame unusable: CRC/alignment (CE), symbol (SE),
// sequence (SEQ), carrier extension (CXE), RX data (RXE).
inline constexpr std::uint8_t kRxErrFrame = 0x01 | 0x02 | 0x04 | 0x10 | 0x80;

// Legacy transmit descriptor (7.2.10).
struct TxDesc {
  std::uint64_t addr;
  std::uint16_t length;
  std::uint8_t cso;
  std::uint8_t cmd;
  std::uint8_t status;
  std::uint8_t css;
  std::uint16_t special;
};
static_assert(sizeof(TxDesc) == 16);

inline constexpr std::uint8_t kTxCmdEop = 1u << 0;
inline constexpr std::uint8_t kTxCmdIfcs = 1u << 1;
inline constexpr std::uint8_t kTxCmdRs = 1u << 3;
inline constexpr std::uint8_t kTxStatusDd = 1u << 0;

}  // namespace e1000e
