// SPDX-License-Identifier: BSD-3-Clause
// pagefrag/pagefrag.h: the whole public library in one include.
//
// Every layer (base, memory, dma, pool, frag, rxbuf) and the AF_XDP adapters;
// no driver, nothing Linux-specific beyond POSIX mmap. VfioDma needs
// <linux/vfio.h> and is included on its own: "pagefrag/dma/vfio_dma.h".
#pragma once

#include "pagefrag/afxdp/afxdp_rxbuf_policy.h"
#include "pagefrag/afxdp/umem_dma.h"
#include "pagefrag/afxdp/umem_provider.h"
#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/memory/hugepage_provider.h"
#include "pagefrag/memory/locked_provider.h"
#include "pagefrag/memory/mapped_region.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"
#include "pagefrag/pool/page_pool.h"
#include "pagefrag/pool/page_pool_params.h"
#include "pagefrag/pool/pool_stats.h"
#include "pagefrag/pool/stuck_pools.h"
#include "pagefrag/rxbuf/full_page_policy.h"
#include "pagefrag/rxbuf/kernel_policy.h"
#include "pagefrag/rxbuf/kind_policies.h"
#include "pagefrag/rxbuf/min_waste_policy.h"
#include "pagefrag/rxbuf/platform.h"
#include "pagefrag/rxbuf/rxbuf.h"
#include "pagefrag/rxbuf/rxbuf_cfg.h"
#include "pagefrag/rxbuf/rxbuf_policy.h"
#include "pagefrag/version.h"
