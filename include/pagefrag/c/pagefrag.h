/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pagefrag/c/pagefrag.h: the C API of pagefrag (C11; also valid C++).
 *
 * A page pool (the Linux kernel's page_pool) cut into RX fragments (the MANA
 * driver's design), for user-space NIC drivers written in C. Link with
 * libpagefrag_c (`pkg-config --cflags --libs pagefrag-c`).
 *
 * Objects:
 *   pagefrag_pool_t  one RX queue's pool and fragment allocator. Created on a
 *                    thread that becomes its owner; the owner-only functions
 *                    below fail with PAGEFRAG_ENOTOWNER on any other thread.
 *   pagefrag_page_t  the page a fragment lives in (opaque); the token a
 *                    fragment is freed by.
 *   pagefrag_frag_t  one fragment: CPU address, device address (IOVA),
 *                    offset in its page, truesize, page.
 *
 * Errors: every function that can fail returns an int, PAGEFRAG_OK (0) or a
 * negative pagefrag_error code, and on failure stores a readable message for
 * the calling thread (pagefrag_last_error()). Errors never abort, except the
 * misuse the C++ library aborts on too (freeing a fragment twice, freeing a
 * pointer that is not a fragment's page): those break the pool's invariants
 * and stop the process with a message (PAGEFRAG_CHECK), as in the C++ API.
 *
 * Thread contract (the same as the C++ API): pagefrag_frag_alloc*,
 * pagefrag_frag_free, the syncs, pagefrag_pool_reclaim, pagefrag_pool_stats
 * and pagefrag_pool_destroy on the owner thread; pagefrag_frag_free_remote*
 * from any thread, also after pagefrag_pool_destroy. The planner, the
 * parameter initialisers and the error functions from any thread.
 */
#ifndef PAGEFRAG_C_PAGEFRAG_H_
#define PAGEFRAG_C_PAGEFRAG_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PAGEFRAG_C_API __attribute__((visibility("default")))
#else
#define PAGEFRAG_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

/* Return codes: 0 or negative. */
enum pagefrag_error {
  PAGEFRAG_OK = 0,
  PAGEFRAG_EINVAL = -1,    /* a bad argument: NULL, out of range, bad enum */
  PAGEFRAG_ENOMEM = -2,    /* out of pages or memory (data path: pool empty) */
  PAGEFRAG_ENOTOWNER = -3, /* an owner-only call on another thread */
  PAGEFRAG_ESYSTEM = -4,   /* the system refused (mmap, hugepages, VFIO ioctl) */
  PAGEFRAG_ERANGE = -5,    /* an output buffer is too small */
  PAGEFRAG_EINTERNAL = -6, /* an unexpected C++ exception (a bug) */
};

/* A short constant name for a return code ("PAGEFRAG_EINVAL"), or
 * "PAGEFRAG_UNKNOWN" for a value that is not one. Never NULL. Any thread. */
PAGEFRAG_C_API const char* pagefrag_strerror(int code);

/* The message of the last call that failed on this thread (what was wrong
 * and what was expected), or "" if none has. Successful calls leave it
 * unchanged. Valid until the next failing call on this thread. Never NULL. */
PAGEFRAG_C_API const char* pagefrag_last_error(void);

/* ---- pools -------------------------------------------------------------- */

typedef struct pagefrag_pool pagefrag_pool_t;
typedef struct pagefrag_page pagefrag_page_t;

/* Where pages come from. */
typedef enum pagefrag_memory {
  PAGEFRAG_MEMORY_HEAP = 0,       /* anonymous mmap, any host */
  PAGEFRAG_MEMORY_HUGEPAGE_2M = 1 /* 2 MiB hugepages (physically contiguous) */
} pagefrag_memory_t;

/* How the device sees memory. */
typedef enum pagefrag_dma {
  PAGEFRAG_DMA_NONE = 0,        /* no device: IOVA = CPU address, syncs do nothing */
  PAGEFRAG_DMA_COHERENT = 1,    /* a cache-coherent IOMMU: per-page IOVAs, syncs do nothing */
  PAGEFRAG_DMA_MOCK_STRICT = 2, /* the strict simulated IOMMU: every sync checked */
  PAGEFRAG_DMA_VFIO = 3         /* VFIO type1 through the caller's container fd */
} pagefrag_dma_t;

typedef struct pagefrag_pool_params {
  uint64_t page_size;       /* base page bytes: a power of two, 4096..1 GiB (HEAP)
                               or 4096..2 MiB (HUGEPAGE_2M); default 4096 */
  uint32_t order;           /* a pool page (block) is page_size << order: 0..10; default 0 */
  uint32_t pool_size;       /* blocks the pool holds at most: 1..32768; default 1024 */
  pagefrag_memory_t memory; /* default PAGEFRAG_MEMORY_HEAP */
  pagefrag_dma_t dma;       /* default PAGEFRAG_DMA_NONE */
  int vfio_container_fd;    /* PAGEFRAG_DMA_VFIO: an open VFIO container with an
                               IOMMU set (VFIO_SET_IOMMU done); not closed by
                               pagefrag. IOVAs lie in the IOMMU's valid ranges
                               below the mask; other pools and the caller may
                               map into the same container (the pool steps
                               around their mappings). Otherwise ignored.
                               Default -1 */
  uint32_t dma_mask_bits;   /* IOVAs stay below 2^bits: 12..64, and the window
                               must hold one block; PAGEFRAG_DMA_NONE (CPU
                               addresses) only 64. Default 64 */
  uint32_t frag_align;      /* fragment sizes round up to this: a power of two
                               8..block bytes; default 64 */
} pagefrag_pool_params_t;

/* Fills *params with the defaults above. NULL is ignored. Any thread. */
PAGEFRAG_C_API void pagefrag_pool_params_init(pagefrag_pool_params_t* params);

/* Creates a pool and its fragment allocator; the calling thread becomes the
 * owner. Pages are taken from the provider on demand (at most pool_size
 * blocks) and DMA-mapped once, when they enter the pool.
 * Returns:
 *   PAGEFRAG_OK       *out is the pool
 *   PAGEFRAG_EINVAL   params or out NULL, a field out of range or an enum
 *                     value that is not one (the message names the field)
 *   PAGEFRAG_ESYSTEM  mmap, hugepages (none reserved) or the VFIO container
 *                     refused (the message says which and why)
 *   PAGEFRAG_ENOMEM   allocation failed
 * On failure *out is set to NULL (if out is not NULL). */
PAGEFRAG_C_API int pagefrag_pool_create(const pagefrag_pool_params_t* params,
                                        pagefrag_pool_t** out);

/* Destroys the pool. Fragments still out stay valid: free them later with
 * pagefrag_frag_free_remote() (from any thread); the last one home releases
 * the memory and the DMA mappings. Owner thread.
 * Returns:
 *   PAGEFRAG_OK         the handle is gone (do not use it again)
 *   PAGEFRAG_EINVAL     pool is NULL
 *   PAGEFRAG_ENOTOWNER  called on another thread; nothing was done */
PAGEFRAG_C_API int pagefrag_pool_destroy(pagefrag_pool_t* pool);

/* Bytes of one pool page (block): page_size << order; 0 if pool is NULL.
 * Any thread. */
PAGEFRAG_C_API uint64_t pagefrag_pool_block_bytes(const pagefrag_pool_t* pool);

/* Pools created whose memory is not released yet: a destroyed pool counts
 * until its last fragment has come home. 0 at a clean shutdown. Any thread. */
PAGEFRAG_C_API uint64_t pagefrag_live_pools(void);

/* Recycles retired pages whose last fragment came back through
 * pagefrag_frag_free_remote() (the allocator also does this by itself as
 * pages retire). Owner thread.
 * Returns: PAGEFRAG_OK, PAGEFRAG_EINVAL (pool NULL), PAGEFRAG_ENOTOWNER. */
PAGEFRAG_C_API int pagefrag_pool_reclaim(pagefrag_pool_t* pool);

/* ---- fragments ------------------------------------------------------------ */

typedef struct pagefrag_frag {
  void* va;              /* first byte of the fragment (CPU) */
  uint64_t iova;         /* the device address of va */
  uint32_t offset;       /* from the first byte of the page */
  uint32_t truesize;     /* bytes charged: the size rounded up to frag_align,
                            or to the end of the page for the page's last
                            fragment; a whole page for sizes over half a page */
  pagefrag_page_t* page; /* the token to free the fragment with */
} pagefrag_frag_t;

/* A fragment of at least size bytes. Owner thread.
 * Returns:
 *   PAGEFRAG_OK         *frag filled
 *   PAGEFRAG_EINVAL     pool or frag NULL, size 0 or above the block bytes
 *   PAGEFRAG_ENOMEM     the pool has no page (all pool_size blocks are out)
 *   PAGEFRAG_ENOTOWNER  called on another thread
 * On failure *frag is zeroed (if frag is not NULL). */
PAGEFRAG_C_API int pagefrag_frag_alloc(pagefrag_pool_t* pool, uint32_t size, pagefrag_frag_t* frag);

/* n fragments of at least size bytes each into frags[0..n). *allocated
 * (may be NULL) receives how many were filled, also on failure. Owner thread.
 * Returns:
 *   PAGEFRAG_OK         all n filled (n may be 0)
 *   PAGEFRAG_ENOMEM     the pool ran out after *allocated fragments
 *   PAGEFRAG_EINVAL     pool NULL, frags NULL with n > 0, size 0 or above the
 *                       block bytes (nothing allocated)
 *   PAGEFRAG_ENOTOWNER  called on another thread (nothing allocated) */
PAGEFRAG_C_API int pagefrag_frag_alloc_bulk(pagefrag_pool_t* pool, uint32_t size,
                                            pagefrag_frag_t* frags, size_t n, size_t* allocated);

/* Frees a fragment of this pool on the owner thread: no atomic
 * read-modify-write unless its page was handed to the shared count.
 * Freeing a fragment twice aborts the process (or corrupts the pool if the
 * page was reused); do not.
 * Returns:
 *   PAGEFRAG_OK         freed
 *   PAGEFRAG_EINVAL     pool or page NULL, or page belongs to another pool
 *   PAGEFRAG_ENOTOWNER  called on another thread (use _remote); not freed */
PAGEFRAG_C_API int pagefrag_frag_free(pagefrag_pool_t* pool, pagefrag_page_t* page);

/* Frees a fragment from any thread, also after pagefrag_pool_destroy(): one
 * atomic decrement on its page.
 * Returns: PAGEFRAG_OK, or PAGEFRAG_EINVAL if page is NULL. */
PAGEFRAG_C_API int pagefrag_frag_free_remote(pagefrag_page_t* page);

/* Frees n fragments from any thread, one atomic per run of consecutive
 * fragments of the same page (an RX ring completing in order).
 * Returns: PAGEFRAG_OK (n may be 0), or PAGEFRAG_EINVAL if pages is NULL with
 * n > 0 or any pages[i] is NULL (then nothing is freed). */
PAGEFRAG_C_API int pagefrag_frag_free_remote_bulk(pagefrag_page_t* const* pages, size_t n);

/* Hands bytes [offset, offset + len) of the fragment to the CPU (after the
 * device wrote them) or to the device (before it reads or writes them). A
 * no-op for NONE, COHERENT and VFIO on x86; checked by MOCK_STRICT. Owner
 * thread.
 * Returns:
 *   PAGEFRAG_OK         synced
 *   PAGEFRAG_EINVAL     pool or frag NULL, frag->page not of this pool, len 0
 *                       or offset + len above frag->truesize
 *   PAGEFRAG_ENOTOWNER  called on another thread */
PAGEFRAG_C_API int pagefrag_frag_sync_for_cpu(pagefrag_pool_t* pool, const pagefrag_frag_t* frag,
                                              uint32_t offset, uint32_t len);
PAGEFRAG_C_API int pagefrag_frag_sync_for_device(pagefrag_pool_t* pool, const pagefrag_frag_t* frag,
                                                 uint32_t offset, uint32_t len);

/* ---- statistics --------------------------------------------------------- */

typedef struct pagefrag_stat {
  const char* name; /* static storage, e.g. "pool_alloc_fast" */
  int64_t value;
} pagefrag_stat_t;

/* The pool's counters as a name/value table: the page pool's counters
 * (pool_*: the kernel's page_pool stats; pool_inflight, the kernel's
 * hold - release, which counts the pages in the pool's cache and ring too;
 * pool_handed_out, the pages handed out and not returned; pool_held_bytes),
 * the fragment allocator's (frag_*), and with
 * PAGEFRAG_DMA_MOCK_STRICT the simulated IOMMU's (dma_*). The names and their
 * order are fixed for a pool. Call with table NULL and capacity 0 to learn
 * the count. Owner thread.
 * Returns:
 *   PAGEFRAG_OK         *count rows written to table
 *   PAGEFRAG_ERANGE     capacity < the rows (then *count is the rows needed
 *                       and table is untouched); also for table NULL
 *   PAGEFRAG_EINVAL     pool or count NULL
 *   PAGEFRAG_ENOTOWNER  called on another thread */
PAGEFRAG_C_API int pagefrag_pool_stats(const pagefrag_pool_t* pool, pagefrag_stat_t* table,
                                       size_t capacity, size_t* count);

/* ---- RX buffer planning ---------------------------------------------------- */

typedef enum pagefrag_rxbuf_policy {
  PAGEFRAG_RXBUF_KERNEL = 0,    /* the Linux MANA driver's rules */
  PAGEFRAG_RXBUF_FULL_PAGE = 1, /* one buffer per block, always */
  PAGEFRAG_RXBUF_MIN_WASTE = 2  /* the page order that wastes least (up to max_order) */
} pagefrag_rxbuf_policy_t;

typedef enum pagefrag_rxbuf_kind {
  PAGEFRAG_RXBUF_STANDARD = 0, /* fragments: frag_count > 1 per block */
  PAGEFRAG_RXBUF_JUMBO = 1,    /* one buffer per higher-order block */
  PAGEFRAG_RXBUF_XDP = 2,      /* one buffer per page, XDP headroom first */
  PAGEFRAG_RXBUF_FULL = 3      /* one buffer per block, forced */
} pagefrag_rxbuf_kind_t;

typedef struct pagefrag_rxbuf_request {
  uint64_t page_size;             /* base page bytes: a power of two 4096..1 MiB; default 4096 */
  uint32_t mtu;                   /* L3 MTU: 68..adapter_mtu - 14; default 1500 */
  int xdp;                        /* nonzero: an XDP program is attached; default 0 */
  uint32_t adapter_mtu;           /* the largest frame the adapter takes; default 9216 */
  uint32_t queue_size;            /* RX ring entries; default 1024 */
  uint32_t max_order;             /* the largest order MIN_WASTE may pick: 0..10; default 4 */
  pagefrag_rxbuf_policy_t policy; /* default PAGEFRAG_RXBUF_KERNEL */
} pagefrag_rxbuf_request_t;

typedef struct pagefrag_rxbuf_cfg {
  pagefrag_rxbuf_kind_t kind;
  uint32_t page_size;   /* base page bytes */
  uint32_t order;       /* the pool's page order: a block is page_size << order */
  uint32_t datasize;    /* bytes the device may write: mtu + ETH_HLEN */
  uint32_t alloc_size;  /* bytes one buffer occupies (ask pagefrag_frag_alloc for this) */
  uint32_t headroom;    /* bytes before the packet */
  uint32_t frag_count;  /* buffers per block */
  uint32_t truesize;    /* bytes one buffer really consumes */
  uint32_t pool_size;   /* blocks for queue_size buffers (the pool's pool_size) */
  uint64_t queue_bytes; /* pool_size blocks in bytes */
} pagefrag_rxbuf_cfg_t;

/* Fills *req with the defaults above. NULL is ignored. Any thread. */
PAGEFRAG_C_API void pagefrag_rxbuf_request_init(pagefrag_rxbuf_request_t* req);

/* Sizes RX buffers for req under req->policy; nothing is allocated. Any
 * thread.
 * Returns:
 *   PAGEFRAG_OK      *cfg filled
 *   PAGEFRAG_EINVAL  req or cfg NULL, a field out of range (the message
 *                    names it and the range), a bad policy value, or a
 *                    plan whose pool_size exceeds what
 *                    pagefrag_pool_create() accepts (32768 blocks) */
PAGEFRAG_C_API int pagefrag_rxbuf_plan(const pagefrag_rxbuf_request_t* req,
                                       pagefrag_rxbuf_cfg_t* cfg);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PAGEFRAG_C_PAGEFRAG_H_ */
