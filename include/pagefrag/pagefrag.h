// pagefrag/pagefrag.h: the whole public library in one include.
#pragma once

#include "pagefrag/base/bits.h"
#include "pagefrag/base/check.h"
#include "pagefrag/base/compiler.h"
#include "pagefrag/base/iova.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/dma/premapped_region.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/memory/page.h"
#include "pagefrag/memory/provider.h"
#include "pagefrag/version.h"
