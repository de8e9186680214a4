/* SPDX-License-Identifier: BSD-3-Clause */
/* The C API, compiled as C11: every function, the thread contract (a pthread
 * freeing fragments the owner allocated), destroy with fragments out, and
 * hostile inputs (NULL handles, zero and huge sizes, bad enum values). */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pagefrag/c/pagefrag.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    ++checks;                                                                                  \
    if (!(cond)) {                                                                             \
      ++failures;                                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              pagefrag_last_error());                                                          \
    }                                                                                          \
  } while (0)

/* rc is the code and the message names `word`. */
#define CHECK_ERR(call, code, word)                                                 \
  do {                                                                              \
    int rc_ = (call);                                                               \
    CHECK(rc_ == (code));                                                           \
    if (rc_ != (code)) fprintf(stderr, "  got %s\n", pagefrag_strerror(rc_));       \
    CHECK(strstr(pagefrag_last_error(), (word)) != NULL);                           \
    if (strstr(pagefrag_last_error(), (word)) == NULL)                              \
      fprintf(stderr, "  message lacks '%s': %s\n", (word), pagefrag_last_error()); \
  } while (0)

static pagefrag_pool_t* make_pool(pagefrag_dma_t dma, uint32_t pool_size) {
  pagefrag_pool_params_t p;
  pagefrag_pool_params_init(&p);
  p.dma = dma;
  p.pool_size = pool_size;
  pagefrag_pool_t* pool = NULL;
  int rc = pagefrag_pool_create(&p, &pool);
  CHECK(rc == PAGEFRAG_OK);
  CHECK(pool != NULL);
  return pool;
}

static int64_t stat_of(const pagefrag_pool_t* pool, const char* name) {
  pagefrag_stat_t table[64];
  size_t n = 0;
  CHECK(pagefrag_pool_stats(pool, table, 64, &n) == PAGEFRAG_OK);
  for (size_t i = 0; i < n; ++i) {
    if (strcmp(table[i].name, name) == 0) return table[i].value;
  }
  fprintf(stderr, "no stat %s\n", name);
  ++failures;
  return -1;
}

static void test_errors(void) {
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_OK), "PAGEFRAG_OK") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_EINVAL), "PAGEFRAG_EINVAL") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_ENOMEM), "PAGEFRAG_ENOMEM") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_ENOTOWNER), "PAGEFRAG_ENOTOWNER") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_ESYSTEM), "PAGEFRAG_ESYSTEM") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_ERANGE), "PAGEFRAG_ERANGE") == 0);
  CHECK(strcmp(pagefrag_strerror(PAGEFRAG_EINTERNAL), "PAGEFRAG_EINTERNAL") == 0);
  CHECK(strcmp(pagefrag_strerror(12345), "PAGEFRAG_UNKNOWN") == 0);
  CHECK(pagefrag_last_error() != NULL);
}

static void test_create_hostile(void) {
  pagefrag_pool_params_t p;
  pagefrag_pool_t* pool = (pagefrag_pool_t*)&p; /* must be reset to NULL */
  CHECK_ERR(pagefrag_pool_create(NULL, &pool), PAGEFRAG_EINVAL, "params");
  CHECK(pool == NULL);
  pagefrag_pool_params_init(&p);
  CHECK_ERR(pagefrag_pool_create(&p, NULL), PAGEFRAG_EINVAL, "out");
  pagefrag_pool_params_init(NULL); /* ignored */

#define BAD(stmt, word)                                                \
  do {                                                                 \
    pagefrag_pool_params_init(&p);                                     \
    stmt;                                                              \
    pool = NULL;                                                       \
    CHECK_ERR(pagefrag_pool_create(&p, &pool), PAGEFRAG_EINVAL, word); \
    CHECK(pool == NULL);                                               \
  } while (0)
  BAD(p.page_size = 0, "page_size");
  BAD(p.page_size = 3000, "page_size");
  BAD(p.page_size = (uint64_t)1 << 40, "page_size");
  BAD(p.page_size = UINT64_MAX, "page_size");
  BAD(p.order = 11, "order");
  BAD(p.order = UINT32_MAX, "order");
  BAD((p.page_size = (uint64_t)1 << 28, p.order = 3), "order");
  BAD(p.pool_size = 0, "pool_size");
  BAD(p.pool_size = 40000, "pool_size");
  BAD(p.pool_size = UINT32_MAX, "pool_size");
  BAD(p.memory = (pagefrag_memory_t)7, "memory");
  BAD(p.memory = (pagefrag_memory_t)-1, "memory");
  BAD(p.dma = (pagefrag_dma_t)9, "dma");
  BAD(p.dma = (pagefrag_dma_t)-3, "dma");
  BAD(p.dma_mask_bits = 11, "dma_mask_bits");
  BAD(p.dma_mask_bits = 65, "dma_mask_bits");
  /* NONE's IOVAs are CPU addresses: no mask below 64. */
  BAD((p.dma = PAGEFRAG_DMA_NONE, p.dma_mask_bits = 48), "dma_mask_bits");
  /* A window that holds no block: [4 KiB, 4 KiB - 1], and [4 KiB, 8 KiB - 1]
   * against an 8 KiB block. */
  BAD((p.dma = PAGEFRAG_DMA_COHERENT, p.dma_mask_bits = 12), "one block");
  BAD((p.dma = PAGEFRAG_DMA_MOCK_STRICT, p.dma_mask_bits = 13, p.order = 1), "one block");
  /* VFIO never gives IOVA 0 (nor its 4 KiB page): a 12-bit mask leaves none
   * (checked before the container fd). */
  BAD((p.dma = PAGEFRAG_DMA_VFIO, p.vfio_container_fd = 0, p.dma_mask_bits = 12), "one block");
  BAD(p.frag_align = 0, "frag_align");
  BAD(p.frag_align = 48, "frag_align");
  BAD(p.frag_align = 8192, "frag_align");
  BAD((p.dma = PAGEFRAG_DMA_VFIO, p.vfio_container_fd = -1), "vfio_container_fd");
  BAD((p.dma = PAGEFRAG_DMA_VFIO, p.vfio_container_fd = 1000000), "vfio_container_fd");
#undef BAD

  /* An open file that is not a VFIO container: the system refuses. */
  int fd = open("/dev/null", O_RDWR);
  CHECK(fd >= 0);
  pagefrag_pool_params_init(&p);
  p.dma = PAGEFRAG_DMA_VFIO;
  p.vfio_container_fd = fd;
  pool = NULL;
  CHECK_ERR(pagefrag_pool_create(&p, &pool), PAGEFRAG_ESYSTEM, "VFIO");
  CHECK(pool == NULL);
  close(fd);
  CHECK(pagefrag_live_pools() == 0);
}

/* Fragments of one page share va - offset and iova - offset; every byte of
 * every fragment is its own (written and read back). */
static void check_layout(pagefrag_dma_t dma) {
  pagefrag_pool_t* pool = make_pool(dma, 8);
  if (pool == NULL) return;
  CHECK(pagefrag_pool_block_bytes(pool) == 4096);
  enum { N = 20 };
  pagefrag_frag_t f[N];
  for (int i = 0; i < N; ++i) {
    CHECK(pagefrag_frag_alloc(pool, 1000, &f[i]) == PAGEFRAG_OK);
    CHECK(f[i].page != NULL);
    CHECK(f[i].truesize >= 1024); /* 1000 rounded up to 64 */
    CHECK(f[i].offset + f[i].truesize <= 4096);
    memset(f[i].va, i + 1, 1000);
    if (dma == PAGEFRAG_DMA_NONE) {
      CHECK(f[i].iova == (uint64_t)(uintptr_t)f[i].va);
    } else {
      CHECK(f[i].iova != (uint64_t)(uintptr_t)f[i].va);
    }
  }
  for (int i = 0; i < N; ++i) {
    const unsigned char* b = f[i].va;
    int ok = 1;
    for (int k = 0; k < 1000; ++k) ok &= b[k] == (unsigned char)(i + 1);
    CHECK(ok);
    for (int j = 0; j < N; ++j) {
      if (f[j].page != f[i].page) continue;
      CHECK((char*)f[i].va - f[i].offset == (char*)f[j].va - f[j].offset);
      CHECK(f[i].iova - f[i].offset == f[j].iova - f[j].offset);
      if (i != j) CHECK(f[i].offset != f[j].offset);
    }
  }
  for (int i = 0; i < N; ++i) CHECK(pagefrag_frag_free(pool, f[i].page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
}

static void test_alloc_free(void) {
  check_layout(PAGEFRAG_DMA_NONE);
  check_layout(PAGEFRAG_DMA_COHERENT);
  check_layout(PAGEFRAG_DMA_MOCK_STRICT);
  CHECK(pagefrag_live_pools() == 0);

  pagefrag_pool_t* pool = make_pool(PAGEFRAG_DMA_NONE, 2);
  pagefrag_pool_t* other = make_pool(PAGEFRAG_DMA_NONE, 2);
  pagefrag_frag_t f;
  CHECK_ERR(pagefrag_frag_alloc(pool, 0, &f), PAGEFRAG_EINVAL, "size 0");
  CHECK(f.page == NULL && f.va == NULL);
  CHECK_ERR(pagefrag_frag_alloc(pool, 4097, &f), PAGEFRAG_EINVAL, "size 4097");
  CHECK_ERR(pagefrag_frag_alloc(pool, UINT32_MAX, &f), PAGEFRAG_EINVAL, "size");
  CHECK_ERR(pagefrag_frag_alloc(NULL, 64, &f), PAGEFRAG_EINVAL, "pool");
  CHECK_ERR(pagefrag_frag_alloc(pool, 64, NULL), PAGEFRAG_EINVAL, "frag");

  /* A whole page for more than half a page; the pool holds 2 blocks. */
  pagefrag_frag_t a, b;
  CHECK(pagefrag_frag_alloc(pool, 4096, &a) == PAGEFRAG_OK);
  CHECK(a.truesize == 4096 && a.offset == 0);
  CHECK(pagefrag_frag_alloc(pool, 3000, &b) == PAGEFRAG_OK);
  CHECK(b.truesize == 4096);
  CHECK_ERR(pagefrag_frag_alloc(pool, 64, &f), PAGEFRAG_ENOMEM, "no page");
  CHECK(stat_of(pool, "frag_alloc_fail") == 1);
  CHECK(stat_of(pool, "frag_full_pages") == 2);
  CHECK(stat_of(pool, "pool_handed_out") == 2);
  CHECK(stat_of(pool, "pool_inflight") == 2); /* both blocks, both out */

  CHECK_ERR(pagefrag_frag_free(NULL, a.page), PAGEFRAG_EINVAL, "pool");
  CHECK_ERR(pagefrag_frag_free(pool, NULL), PAGEFRAG_EINVAL, "page");
  CHECK_ERR(pagefrag_frag_free(other, a.page), PAGEFRAG_EINVAL, "not a page of this pool");
  CHECK(pagefrag_frag_free(pool, a.page) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_free(pool, b.page) == PAGEFRAG_OK);
  CHECK(stat_of(pool, "pool_handed_out") == 0);
  CHECK(stat_of(pool, "pool_inflight") == 2); /* back in the cache: still held */
  /* The pages came home: the pool serves again. */
  CHECK(pagefrag_frag_alloc(pool, 4096, &a) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_free(pool, a.page) == PAGEFRAG_OK);

  /* Bulk. */
  pagefrag_frag_t many[40];
  size_t got = 99;
  CHECK(pagefrag_frag_alloc_bulk(pool, 512, many, 0, &got) == PAGEFRAG_OK);
  CHECK(got == 0);
  CHECK(pagefrag_frag_alloc_bulk(pool, 512, NULL, 0, NULL) == PAGEFRAG_OK);
  CHECK_ERR(pagefrag_frag_alloc_bulk(pool, 512, NULL, 3, &got), PAGEFRAG_EINVAL, "frags");
  CHECK_ERR(pagefrag_frag_alloc_bulk(NULL, 512, many, 3, &got), PAGEFRAG_EINVAL, "pool");
  CHECK_ERR(pagefrag_frag_alloc_bulk(pool, 0, many, 3, &got), PAGEFRAG_EINVAL, "size");
  CHECK(got == 0);
  CHECK(pagefrag_frag_alloc_bulk(pool, 512, many, 10, &got) == PAGEFRAG_OK);
  CHECK(got == 10);
  /* 2 blocks of 8 x 512: 16 in all, 6 more fit. */
  CHECK_ERR(pagefrag_frag_alloc_bulk(pool, 512, many + 10, 30, &got), PAGEFRAG_ENOMEM, "no page");
  CHECK(got == 6);
  for (int i = 0; i < 16; ++i) CHECK(pagefrag_frag_free(pool, many[i].page) == PAGEFRAG_OK);

  CHECK(pagefrag_pool_reclaim(pool) == PAGEFRAG_OK);
  CHECK_ERR(pagefrag_pool_reclaim(NULL), PAGEFRAG_EINVAL, "pool");
  CHECK(pagefrag_pool_block_bytes(NULL) == 0);
  CHECK_ERR(pagefrag_pool_destroy(NULL), PAGEFRAG_EINVAL, "pool");
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(other) == PAGEFRAG_OK);
  CHECK(pagefrag_live_pools() == 0);
}

/* COHERENT under a narrow DMA mask: every IOVA below 2^bits, each page its
 * own; a 13-bit mask (IOVAs from 4 KiB: one page) runs out at map time. */
static void test_dma_mask(void) {
  pagefrag_pool_params_t p;
  pagefrag_pool_params_init(&p);
  p.dma = PAGEFRAG_DMA_COHERENT;
  p.dma_mask_bits = 32;
  p.pool_size = 8;
  pagefrag_pool_t* pool = NULL;
  CHECK(pagefrag_pool_create(&p, &pool) == PAGEFRAG_OK);
  pagefrag_frag_t f[8];
  for (int i = 0; i < 8; ++i) {
    CHECK(pagefrag_frag_alloc(pool, 4096, &f[i]) == PAGEFRAG_OK);
    CHECK(f[i].iova < ((uint64_t)1 << 32));
    CHECK(f[i].iova != (uint64_t)(uintptr_t)f[i].va);
    for (int j = 0; j < i; ++j) CHECK(f[i].iova != f[j].iova);
  }
  for (int i = 0; i < 8; ++i) CHECK(pagefrag_frag_free(pool, f[i].page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);

  p.dma_mask_bits = 13;
  pool = NULL;
  CHECK(pagefrag_pool_create(&p, &pool) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_alloc(pool, 4096, &f[0]) == PAGEFRAG_OK);
  CHECK(f[0].iova == 4096);
  CHECK_ERR(pagefrag_frag_alloc(pool, 4096, &f[1]), PAGEFRAG_ENOMEM, "no page");
  CHECK(pagefrag_frag_free(pool, f[0].page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
}

static void test_sync(void) {
  pagefrag_pool_t* pool = make_pool(PAGEFRAG_DMA_MOCK_STRICT, 4);
  pagefrag_pool_t* other = make_pool(PAGEFRAG_DMA_MOCK_STRICT, 4);
  pagefrag_frag_t f, g;
  CHECK(pagefrag_frag_alloc(pool, 1500, &f) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_alloc(other, 1500, &g) == PAGEFRAG_OK);
  const int64_t cpu0 = stat_of(pool, "dma_syncs_for_cpu");
  const int64_t dev0 = stat_of(pool, "dma_syncs_for_device");
  CHECK(pagefrag_frag_sync_for_cpu(pool, &f, 0, 1500) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_sync_for_cpu(pool, &f, 100, f.truesize - 100) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_sync_for_device(pool, &f, 0, f.truesize) == PAGEFRAG_OK);
  CHECK(stat_of(pool, "dma_syncs_for_cpu") == cpu0 + 2);
  CHECK(stat_of(pool, "dma_syncs_for_device") == dev0 + 1);
  CHECK(stat_of(pool, "dma_sync_errors") == 0);
  CHECK_ERR(pagefrag_frag_sync_for_cpu(pool, &f, 0, 0), PAGEFRAG_EINVAL, "len 0");
  CHECK_ERR(pagefrag_frag_sync_for_cpu(pool, &f, 1, f.truesize), PAGEFRAG_EINVAL, "truesize");
  CHECK_ERR(pagefrag_frag_sync_for_cpu(pool, &f, UINT32_MAX, UINT32_MAX), PAGEFRAG_EINVAL,
            "truesize");
  CHECK_ERR(pagefrag_frag_sync_for_device(pool, &g, 0, 64), PAGEFRAG_EINVAL, "not a page");
  CHECK_ERR(pagefrag_frag_sync_for_device(NULL, &f, 0, 64), PAGEFRAG_EINVAL, "pool");
  CHECK_ERR(pagefrag_frag_sync_for_cpu(pool, NULL, 0, 64), PAGEFRAG_EINVAL, "frag");
  pagefrag_frag_t zero;
  memset(&zero, 0, sizeof zero);
  CHECK_ERR(pagefrag_frag_sync_for_cpu(pool, &zero, 0, 64), PAGEFRAG_EINVAL, "not a page");
  CHECK(stat_of(pool, "dma_syncs_for_cpu") == cpu0 + 2);
  CHECK(pagefrag_frag_free(pool, f.page) == PAGEFRAG_OK);
  CHECK(pagefrag_frag_free(other, g.page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(other) == PAGEFRAG_OK);
}

static void test_stats(void) {
  pagefrag_pool_t* plain = make_pool(PAGEFRAG_DMA_NONE, 4);
  pagefrag_pool_t* mock = make_pool(PAGEFRAG_DMA_MOCK_STRICT, 4);
  size_t n = 0, m = 0;
  CHECK_ERR(pagefrag_pool_stats(plain, NULL, 0, &n), PAGEFRAG_ERANGE, "rows");
  CHECK(n == 21);
  CHECK_ERR(pagefrag_pool_stats(mock, NULL, 0, &m), PAGEFRAG_ERANGE, "rows");
  CHECK(m == 29);
  pagefrag_stat_t table[29];
  memset(table, 0, sizeof table);
  CHECK_ERR(pagefrag_pool_stats(plain, table, 5, &n), PAGEFRAG_ERANGE, "capacity 5");
  CHECK(n == 21 && table[0].name == NULL); /* untouched */
  CHECK_ERR(pagefrag_pool_stats(NULL, table, 29, &n), PAGEFRAG_EINVAL, "pool");
  CHECK_ERR(pagefrag_pool_stats(plain, table, 29, NULL), PAGEFRAG_EINVAL, "count");

  pagefrag_frag_t f[3];
  for (int i = 0; i < 3; ++i) CHECK(pagefrag_frag_alloc(mock, 2000, &f[i]) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_stats(mock, table, 29, &m) == PAGEFRAG_OK);
  CHECK(m == 29);
  for (size_t i = 0; i < m; ++i) {
    CHECK(table[i].name != NULL && table[i].name[0] != '\0');
    for (size_t j = 0; j < i; ++j) CHECK(strcmp(table[i].name, table[j].name) != 0);
  }
  /* 2000 rounds to 2048: two fragments a page, so 3 need 2 pages. */
  CHECK(stat_of(mock, "frag_pages_used") == 2);
  CHECK(stat_of(mock, "pool_handed_out") == 2);
  /* The first refill took every block the pool may hold (4 < 64 a refill),
   * each mapped once. */
  CHECK(stat_of(mock, "pool_held_bytes") == 4 * 4096);
  CHECK(stat_of(mock, "dma_maps") == 4);
  CHECK(stat_of(mock, "dma_unmaps") == 0);
  for (int i = 0; i < 3; ++i) CHECK(pagefrag_frag_free(mock, f[i].page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(plain) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(mock) == PAGEFRAG_OK);
}

/* ---- threads ---- */

struct remote_job {
  pagefrag_page_t** pages;
  size_t n;
  int bulk;
  int rc;
};

static void* free_remote_thread(void* arg) {
  struct remote_job* job = arg;
  job->rc = PAGEFRAG_OK;
  if (job->bulk) {
    job->rc = pagefrag_frag_free_remote_bulk(job->pages, job->n);
  } else {
    for (size_t i = 0; i < job->n; ++i) {
      int rc = pagefrag_frag_free_remote(job->pages[i]);
      if (rc != PAGEFRAG_OK) job->rc = rc;
    }
  }
  return NULL;
}

static void run_remote(pagefrag_page_t** pages, size_t n, int bulk) {
  struct remote_job job = {pages, n, bulk, -100};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, free_remote_thread, &job) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(job.rc == PAGEFRAG_OK);
}

struct owner_job {
  pagefrag_pool_t* pool;
  pagefrag_page_t* page;
  int alloc_rc, free_rc, destroy_rc, stats_rc, reclaim_rc, sync_rc, bulk_rc;
};

static void* not_owner_thread(void* arg) {
  struct owner_job* job = arg;
  pagefrag_frag_t f;
  size_t n;
  job->alloc_rc = pagefrag_frag_alloc(job->pool, 64, &f);
  job->bulk_rc = pagefrag_frag_alloc_bulk(job->pool, 64, &f, 1, &n);
  job->free_rc = pagefrag_frag_free(job->pool, job->page);
  job->destroy_rc = pagefrag_pool_destroy(job->pool);
  job->stats_rc = pagefrag_pool_stats(job->pool, NULL, 0, &n);
  job->reclaim_rc = pagefrag_pool_reclaim(job->pool);
  f.page = job->page;
  f.truesize = 64;
  job->sync_rc = pagefrag_frag_sync_for_cpu(job->pool, &f, 0, 64);
  return NULL;
}

static void test_threads(void) {
  /* 4 pages of 4 x 1024: without remote frees coming home the pool would
   * run dry in the second round. */
  pagefrag_pool_t* pool = make_pool(PAGEFRAG_DMA_MOCK_STRICT, 4);
  enum { N = 12 };
  for (int round = 0; round < 50; ++round) {
    pagefrag_frag_t f[N];
    pagefrag_page_t* pages[N];
    size_t got = 0;
    CHECK(pagefrag_frag_alloc_bulk(pool, 1000, f, N, &got) == PAGEFRAG_OK);
    CHECK(got == N);
    for (int i = 0; i < N; ++i) {
      pages[i] = f[i].page;
      memset(f[i].va, round, 1000);
    }
    /* Half freed one by one, half in bulk, both on another thread. */
    run_remote(pages, N / 2, 0);
    run_remote(pages + N / 2, N / 2, 1);
    CHECK(pagefrag_pool_reclaim(pool) == PAGEFRAG_OK);
  }
  CHECK(stat_of(pool, "frag_alloc_fail") == 0);
  CHECK(stat_of(pool, "pool_held_bytes_high_water") <= 4 * 4096);

  CHECK_ERR(pagefrag_frag_free_remote(NULL), PAGEFRAG_EINVAL, "page");
  CHECK_ERR(pagefrag_frag_free_remote_bulk(NULL, 2), PAGEFRAG_EINVAL, "pages");
  CHECK(pagefrag_frag_free_remote_bulk(NULL, 0) == PAGEFRAG_OK);

  /* Owner-only calls on another thread are refused and change nothing. */
  pagefrag_frag_t f;
  CHECK(pagefrag_frag_alloc(pool, 64, &f) == PAGEFRAG_OK);
  pagefrag_page_t* withnull[2] = {f.page, NULL};
  CHECK_ERR(pagefrag_frag_free_remote_bulk(withnull, 2), PAGEFRAG_EINVAL, "pages[1]");
  /* The message is per thread: the other thread's failures leave this one. */
  CHECK_ERR(pagefrag_frag_free_remote(NULL), PAGEFRAG_EINVAL, "pagefrag_frag_free_remote");
  struct owner_job job;
  memset(&job, 0, sizeof job);
  job.pool = pool;
  job.page = f.page;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, not_owner_thread, &job) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(job.alloc_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.bulk_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.free_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.destroy_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.stats_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.reclaim_rc == PAGEFRAG_ENOTOWNER);
  CHECK(job.sync_rc == PAGEFRAG_ENOTOWNER);
  CHECK(strstr(pagefrag_last_error(), "pagefrag_frag_free_remote: page is NULL") != NULL);
  CHECK(pagefrag_frag_free(pool, f.page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
  CHECK(pagefrag_live_pools() == 0);
}

/* Destroy with fragments out: the pool's memory lives until the last one
 * comes home through another thread. */
static void test_destroy_with_fragments_out(void) {
  const pagefrag_dma_t backends[] = {PAGEFRAG_DMA_NONE, PAGEFRAG_DMA_COHERENT,
                                     PAGEFRAG_DMA_MOCK_STRICT};
  for (size_t k = 0; k < sizeof backends / sizeof backends[0]; ++k) {
    pagefrag_pool_t* pool = make_pool(backends[k], 16);
    enum { N = 30 };
    pagefrag_frag_t f[N];
    pagefrag_page_t* pages[N];
    size_t got = 0;
    CHECK(pagefrag_frag_alloc_bulk(pool, 700, f, N, &got) == PAGEFRAG_OK);
    for (int i = 0; i < N; ++i) {
      pages[i] = f[i].page;
      memset(f[i].va, 0xa5, 700);
    }
    /* A few come home before destroy, on the owner. */
    for (int i = 0; i < 5; ++i) CHECK(pagefrag_frag_free(pool, pages[i]) == PAGEFRAG_OK);
    CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
    CHECK(pagefrag_live_pools() == 1);
    /* Still writable: the memory is held. */
    for (int i = 5; i < N; ++i) memset(f[i].va, 0x5a, 700);
    run_remote(pages + 5, 10, 0);
    CHECK(pagefrag_live_pools() == 1);
    run_remote(pages + 15, N - 15, 1);
    CHECK(pagefrag_live_pools() == 0);
  }
  /* Nothing out: destroy releases at once. */
  pagefrag_pool_t* pool = make_pool(PAGEFRAG_DMA_NONE, 1);
  CHECK(pagefrag_live_pools() == 1);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
  CHECK(pagefrag_live_pools() == 0);
}

static void test_hugepages(void) {
  pagefrag_pool_params_t p;
  pagefrag_pool_params_init(&p);
  p.memory = PAGEFRAG_MEMORY_HUGEPAGE_2M;
  p.pool_size = 4;
  pagefrag_pool_t* pool = NULL;
  int rc = pagefrag_pool_create(&p, &pool);
  if (rc != PAGEFRAG_OK) {
    /* No hugepages reserved on this host: refused with the reason. */
    CHECK(rc == PAGEFRAG_ESYSTEM || rc == PAGEFRAG_ENOMEM);
    CHECK(strstr(pagefrag_last_error(), "hugepage") != NULL);
    CHECK(pool == NULL);
    return;
  }
  pagefrag_frag_t f;
  CHECK(pagefrag_frag_alloc(pool, 1500, &f) == PAGEFRAG_OK);
  memset(f.va, 1, 1500);
  CHECK(pagefrag_frag_free(pool, f.page) == PAGEFRAG_OK);
  CHECK(pagefrag_pool_destroy(pool) == PAGEFRAG_OK);
}

static void test_rxbuf_plan(void) {
  pagefrag_rxbuf_request_t req;
  pagefrag_rxbuf_cfg_t cfg;
  pagefrag_rxbuf_request_init(&req);
  pagefrag_rxbuf_request_init(NULL);
  CHECK(req.page_size == 4096 && req.mtu == 1500 && req.xdp == 0);
  CHECK(req.queue_size == 1024 && req.policy == PAGEFRAG_RXBUF_KERNEL);

  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.kind == PAGEFRAG_RXBUF_STANDARD);
  CHECK(cfg.datasize == 1514);
  CHECK(cfg.frag_count >= 2);
  CHECK((uint64_t)cfg.alloc_size * cfg.frag_count <= ((uint64_t)cfg.page_size << cfg.order));
  CHECK(cfg.alloc_size >= cfg.datasize + cfg.headroom);
  CHECK(cfg.pool_size == req.queue_size / cfg.frag_count + 1);
  CHECK(cfg.queue_bytes == (uint64_t)cfg.pool_size * ((uint64_t)cfg.page_size << cfg.order));

  req.xdp = 1;
  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.kind == PAGEFRAG_RXBUF_XDP);
  CHECK(cfg.headroom > 0 && cfg.frag_count == 1);

  pagefrag_rxbuf_request_init(&req);
  req.mtu = 9000;
  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.kind == PAGEFRAG_RXBUF_JUMBO);
  CHECK(((uint64_t)cfg.page_size << cfg.order) >= 9014);

  pagefrag_rxbuf_request_init(&req);
  req.policy = PAGEFRAG_RXBUF_FULL_PAGE;
  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.kind == PAGEFRAG_RXBUF_FULL && cfg.frag_count == 1);
  req.policy = PAGEFRAG_RXBUF_MIN_WASTE;
  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.datasize == 1514);

  pagefrag_rxbuf_request_init(&req);
  CHECK_ERR(pagefrag_rxbuf_plan(NULL, &cfg), PAGEFRAG_EINVAL, "req");
  CHECK_ERR(pagefrag_rxbuf_plan(&req, NULL), PAGEFRAG_EINVAL, "cfg");
  req.mtu = 0;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "mtu");
  pagefrag_rxbuf_request_init(&req);
  req.page_size = 3000;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "page_size");
  pagefrag_rxbuf_request_init(&req);
  req.queue_size = 0;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "queue_size");
  pagefrag_rxbuf_request_init(&req);
  req.policy = (pagefrag_rxbuf_policy_t)42;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "policy 42");
  pagefrag_rxbuf_request_init(&req);
  req.xdp = 1;
  req.mtu = 9000;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "xdp");
  /* Every plan is one pagefrag_pool_create() accepts: one buffer per page
   * for 32768 entries needs 32769 blocks (queue_size / 1 + 1), one more than
   * a pool holds; 32767 entries need 32768 and are planned. */
  pagefrag_rxbuf_request_init(&req);
  req.policy = PAGEFRAG_RXBUF_FULL_PAGE;
  req.queue_size = 32768;
  CHECK_ERR(pagefrag_rxbuf_plan(&req, &cfg), PAGEFRAG_EINVAL, "32769 blocks");
  req.queue_size = 32767;
  CHECK(pagefrag_rxbuf_plan(&req, &cfg) == PAGEFRAG_OK);
  CHECK(cfg.pool_size == 32768);
}

int main(void) {
  test_errors();
  test_create_hostile();
  test_alloc_free();
  test_dma_mask();
  test_sync();
  test_stats();
  test_threads();
  test_destroy_with_fragments_out();
  test_hugepages();
  test_rxbuf_plan();
  CHECK(pagefrag_live_pools() == 0);
  printf("c_api_test: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
