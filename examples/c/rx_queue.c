/* SPDX-License-Identifier: BSD-3-Clause */
/* rx_queue.c: one RX queue of a C driver on pagefrag's C API.
 *
 *   gcc -std=c11 -Wall -Wextra -Wpedantic -Werror rx_queue.c -o rx_queue \
 *       $(pkg-config --cflags --libs pagefrag-c) -lpthread
 *
 * Sizes the queue's buffers with the planner (MTU 1500, 4 KiB pages), creates
 * the pool, posts a ring of fragments, lets a pretend device fill them,
 * syncs each for the CPU, checks the payload, and hands half of the packets
 * to a second thread that frees them there (as a stack or application would),
 * the other half freed on the owner. It prints the plan and the pool's
 * counters, destroys the pool while the other thread still holds packets,
 * and exits 0 when every fragment came home. */
#include <pagefrag/c/pagefrag.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RING = 256, ROUNDS = 64 };

struct handoff {
  pagefrag_page_t* pages[RING];
  size_t n;
};

static void* app_thread(void* arg) {
  struct handoff* h = arg;
  if (pagefrag_frag_free_remote_bulk(h->pages, h->n) != PAGEFRAG_OK) {
    fprintf(stderr, "free_remote_bulk: %s\n", pagefrag_last_error());
  }
  return NULL;
}

static int die(const char* what, int rc) {
  fprintf(stderr, "rx_queue: %s: %s: %s\n", what, pagefrag_strerror(rc), pagefrag_last_error());
  return 1;
}

int main(void) {
  pagefrag_rxbuf_request_t req;
  pagefrag_rxbuf_request_init(&req);
  req.mtu = 1500;
  req.queue_size = RING;
  pagefrag_rxbuf_cfg_t cfg;
  int rc = pagefrag_rxbuf_plan(&req, &cfg);
  if (rc != PAGEFRAG_OK) return die("pagefrag_rxbuf_plan", rc);
  printf(
      "plan: %u buffers of %u bytes per %u-byte block, datasize %u, truesize %u, "
      "pool %u blocks (%llu bytes)\n",
      cfg.frag_count, cfg.alloc_size, cfg.page_size << cfg.order, cfg.datasize, cfg.truesize,
      cfg.pool_size, (unsigned long long)cfg.queue_bytes);

  pagefrag_pool_params_t params;
  pagefrag_pool_params_init(&params);
  params.page_size = cfg.page_size;
  params.order = cfg.order;
  params.pool_size = cfg.pool_size * 2; /* room for a round in flight on the app thread */
  params.dma = PAGEFRAG_DMA_MOCK_STRICT;
  pagefrag_pool_t* pool = NULL;
  rc = pagefrag_pool_create(&params, &pool);
  if (rc != PAGEFRAG_OK) return die("pagefrag_pool_create", rc);

  static pagefrag_frag_t ring[RING];
  static struct handoff h;
  pthread_t app;
  int app_running = 0;
  unsigned long long bytes = 0, corrupt = 0;
  for (int round = 0; round < ROUNDS; ++round) {
    size_t got = 0;
    rc = pagefrag_frag_alloc_bulk(pool, cfg.alloc_size, ring, RING, &got);
    if (rc != PAGEFRAG_OK) return die("pagefrag_frag_alloc_bulk", rc);
    /* The device writes a packet into each buffer (at the IOVA; here the
     * CPU address stands in), then the driver syncs it for the CPU. */
    for (size_t i = 0; i < RING; ++i) {
      const uint32_t len = 64 + (uint32_t)((i * 37 + (size_t)round) % (cfg.datasize - 64));
      memset((char*)ring[i].va + cfg.headroom, (int)(i & 0xff), len);
      rc = pagefrag_frag_sync_for_cpu(pool, &ring[i], cfg.headroom, len);
      if (rc != PAGEFRAG_OK) return die("pagefrag_frag_sync_for_cpu", rc);
      const unsigned char* p = (const unsigned char*)ring[i].va + cfg.headroom;
      for (uint32_t k = 0; k < len; ++k) corrupt += p[k] != (unsigned char)(i & 0xff);
      bytes += len;
    }
    if (app_running) pthread_join(app, NULL);
    /* Even packets go up to the app thread, odd ones are dropped here. */
    h.n = 0;
    for (size_t i = 0; i < RING; ++i) {
      if (i % 2 == 0) {
        h.pages[h.n++] = ring[i].page;
      } else if ((rc = pagefrag_frag_free(pool, ring[i].page)) != PAGEFRAG_OK) {
        return die("pagefrag_frag_free", rc);
      }
    }
    pthread_create(&app, NULL, app_thread, &h);
    app_running = 1;
    pagefrag_pool_reclaim(pool);
  }

  pagefrag_stat_t table[64];
  size_t rows = 0;
  rc = pagefrag_pool_stats(pool, table, 64, &rows);
  if (rc != PAGEFRAG_OK) return die("pagefrag_pool_stats", rc);
  for (size_t i = 0; i < rows; ++i)
    printf("  %-32s %lld\n", table[i].name, (long long)table[i].value);

  /* Destroy while the app thread may still hold the last round. */
  rc = pagefrag_pool_destroy(pool);
  if (rc != PAGEFRAG_OK) return die("pagefrag_pool_destroy", rc);
  pthread_join(app, NULL);
  printf("rx_queue: %d rounds of %d packets, %llu bytes read, %llu corrupt, %llu pools alive\n",
         ROUNDS, RING, bytes, corrupt, (unsigned long long)pagefrag_live_pools());
  return corrupt == 0 && pagefrag_live_pools() == 0 ? 0 : 1;
}
