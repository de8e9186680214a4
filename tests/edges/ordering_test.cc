// SPDX-License-Identifier: BSD-3-Clause
// Memory ordering of the paths a page takes back to its owner, for
// ThreadSanitizer (CI runs this test under TSan): a page's fragments are
// written word by word by the owner, read word by word and freed by other
// threads, and the page is then cut again and rewritten by the owner. If a
// release or an acquire on the way back is missing, nothing orders the other
// threads' reads before the owner's new writes and TSan reports the race;
// in the other configurations the word patterns catch an early reuse.
//
// The threads hand work over in one direction only: the owner publishes
// fragments with a release store and each freeing thread takes them with an
// acquire load; a freeing thread reports "done" with a relaxed store that
// the owner polls with relaxed loads, so the only ordering from the freeing
// threads back to the owner is the library's.
//
// Every way a page finishes is scripted, each for many rounds:
//   watched, owner last   retired before any remote free, watched; the
//                         owner's last free finds the page done (free_frag)
//   done at retirement    every fragment back before the page retires
//   watched, remote last  the owner finds the page done in reclaim()
//   merged, remote last   remote frees had begun at retirement (merge); a
//                         remote free ends it and recycles through the ring
//   merged, owner last    as above, the owner's free ends it
//   merged, owner release the owner rewrites its fragments after handing the
//                         last one out and frees them (not the last); a remote
//                         free then ends the page, and the recycle's sync for
//                         the device reads every byte: only the owner's
//                         release orders its writes before that read
//   put_page              a whole page with two references, both dropped
//                         remotely (PagePool::put_page), back through the ring
// In each script the acquire under test is the owner's (or the last freer's)
// only look at the count after the other frees: an earlier acquire on the
// same path would order them and hide the one that is missing.
//
// The pool syncs returned pages for the device through ReadingDma, whose
// sync_for_device reads the page word by word as a device's DMA would read
// it: a recycle on a freeing thread is then a read of every byte the owner
// wrote.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "pagefrag/base/hardened.h"
#include "pagefrag/dma/dma_backend.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"

namespace pagefrag {
namespace {

// See BUILD: the hardened liveness table's mutex would order every remote
// free before the owner's next cut and hide the races this test looks for.
static_assert(!kHardened, "ordering_test must be built without PAGEFRAG_HARDENED");

// Identity mapping; sync_for_device reads [iova, iova + len) word by word
// (a device reading the buffer), sync_for_cpu does nothing.
class ReadingDma {
 public:
  static constexpr DmaFeatures kFeatures{.needs_sync = true, .identity_iova = true};
  absl::StatusOr<Iova> map(std::span<std::byte> cpu, DmaDirection) {
    return Iova(reinterpret_cast<std::uintptr_t>(cpu.data()));
  }
  absl::Status unmap(Iova, std::size_t, DmaDirection) { return absl::OkStatus(); }
  void sync_for_device(Iova iova, std::size_t len, DmaDirection) noexcept {
    const auto* w = reinterpret_cast<const std::uint64_t*>(iova.value());
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < len / 8; ++i) sum += w[i];
    sink_.fetch_add(sum, std::memory_order_relaxed);  // keeps the reads
  }
  void sync_for_cpu(Iova, std::size_t, DmaDirection) noexcept {}

 private:
  std::atomic<std::uint64_t> sink_{0};
};
static_assert(DmaBackend<ReadingDma>);

using Pool = PagePool<HeapProvider, ReadingDma>;
using Frags = FragmentAllocator<Pool>;

constexpr std::uint32_t kPage = 4096;
constexpr std::uint32_t kFragBytes = 512;  // 8 fragments a page, the last one exact
constexpr std::uint32_t kPerPage = kPage / kFragBytes;
constexpr std::uint32_t kWords = kFragBytes / 8;
constexpr int kRoundsPerPath = 60;

std::uint64_t word_of(std::uint64_t tag, std::uint32_t i) {
  return (tag * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t{i} << 1 | 1);
}

// Word by word (a loop of plain stores whose values all differ, never one
// memset), so each word's shadow records this thread's write.
void write_words(std::byte* p, std::uint32_t words, std::uint64_t tag) {
  auto* w = reinterpret_cast<std::uint64_t*>(p);
  for (std::uint32_t i = 0; i < words; ++i) w[i] = word_of(tag, i);
}
bool words_ok(const std::byte* p, std::uint32_t words, std::uint64_t tag) {
  const auto* w = reinterpret_cast<const std::uint64_t*>(p);
  bool ok = true;
  for (std::uint32_t i = 0; i < words; ++i) ok &= w[i] == word_of(tag, i);
  return ok;
}

// A thread that reads and frees what the owner hands it.
class Freer {
 public:
  enum class How { kFragRemote, kPutPage };
  struct Item {
    Page* page;
    std::byte* va;
    std::uint32_t words;
    std::uint64_t tag;
  };

  explicit Freer(Pool* pool) : pool_(pool), jobs_(kMaxSteps), thread_([this] { loop(); }) {}
  ~Freer() {
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }

  // Owner: hands `items` over, waits until they are read and freed. The
  // wait is relaxed: it orders nothing. Each step has its own job slot, so
  // the owner never writes what the freer last read.
  void run(std::vector<Item> items, How how) {
    start(std::move(items), how, false);
    wait();
  }
  // Owner: hands `items` over without waiting; with hold, the freer reads
  // them, then frees them only after go(). go() and the freer's wait for it
  // are relaxed: they order nothing.
  void start(std::vector<Item> items, How how, bool hold) {
    const std::uint64_t step = ++step_;
    REQUIRE(step < kMaxSteps);
    jobs_[step] = Job{std::move(items), how, hold};
    cmd_.store(step, std::memory_order_release);
  }
  void go() { go_.store(step_, std::memory_order_relaxed); }
  void wait() {
    while (done_.load(std::memory_order_relaxed) != step_) std::this_thread::yield();
  }
  std::uint64_t corrupt() const { return corrupt_.load(std::memory_order_relaxed); }

 private:
  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      const std::uint64_t step = cmd_.load(std::memory_order_acquire);
      if (step == seen) {
        if (stop_.load(std::memory_order_acquire)) return;
        std::this_thread::yield();
        continue;
      }
      seen = step;
      const Job& job = jobs_[step];
      for (const Item& it : job.items) {
        if (!words_ok(it.va, it.words, it.tag)) corrupt_.fetch_add(1, std::memory_order_relaxed);
      }
      while (job.hold && go_.load(std::memory_order_relaxed) != step) std::this_thread::yield();
      for (const Item& it : job.items) {
        if (job.how == How::kFragRemote) {
          Frags::free_frag_remote(it.page);
        } else {
          pool_->put_page(it.page, -1, false);
        }
      }
      done_.store(step, std::memory_order_relaxed);
    }
  }

  struct Job {
    std::vector<Item> items;
    How how = How::kFragRemote;
    bool hold = false;
  };
  static constexpr std::uint64_t kMaxSteps = 1024;

  Pool* pool_;
  std::vector<Job> jobs_;   // sized once: the freer only reads jobs_[step]
  std::uint64_t step_ = 0;  // owner
  std::atomic<std::uint64_t> cmd_{0};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> go_{0};
  std::atomic<std::uint64_t> corrupt_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

enum class Path {
  kWatchedOwnerLast,
  kDoneAtRetire,
  kWatchedRemoteLast,
  kMergedRemoteLast,
  kMergedOwnerLast,
  kMergedOwnerRelease
};

struct PageOut {
  std::vector<Frag> frags;  // kPerPage fragments of one page, in cut order
  std::uint64_t tag = 0;
  Path path = Path::kWatchedOwnerLast;
};

struct Harness {
  Harness()
      : provider(
            *HeapProvider::create({.page_size = kPage, .max_order = 0, .capacity = 64 * kPage})) {
    auto p = Pool::create(
        provider, dma,
        {.pool_size = 4, .max_len = kPage, .flags = kPagePoolDmaMap | kPagePoolDmaSyncDev});
    REQUIRE(p.ok());
    pool = *std::move(p);
    auto f = Frags::create(*pool);
    REQUIRE(f.ok());
    frags.emplace(*std::move(f));
    r1.emplace(pool.get());
    r2.emplace(pool.get());
    r3.emplace(pool.get());
  }

  Freer::Item item(const Frag& f, std::uint64_t tag, std::uint32_t i) const {
    return {f.page, f.va, kWords, tag * kPerPage + i};
  }
  // Fragments i of `out` for which pick(i) holds, as freer items.
  template <class Pick>
  std::vector<Freer::Item> items(const PageOut& out, Pick pick) const {
    std::vector<Freer::Item> v;
    for (std::uint32_t i = 0; i < kPerPage; ++i) {
      if (pick(i)) v.push_back(item(out.frags[i], out.tag, i));
    }
    return v;
  }
  // The owner checks and frees its fragments (the even ones) of `out`.
  void owner_frees(const PageOut& out, std::uint32_t from = 0, std::uint32_t to = kPerPage) {
    for (std::uint32_t i = from; i < to; i += 2) {
      CHECK(words_ok(out.frags[i].va, kWords, out.tag * kPerPage + i));
      frags->free_frag(out.frags[i].page);
    }
  }

  // Cuts one page's fragments (the first cut retires the previous page)
  // and writes them word by word.
  PageOut cut_page(std::uint64_t tag, Path path) {
    PageOut out{{}, tag, path};
    for (std::uint32_t i = 0; i < kPerPage; ++i) {
      Frag f = frags->alloc_frag(kFragBytes);
      REQUIRE(f);
      write_words(f.va, kWords, tag * kPerPage + i);
      out.frags.push_back(f);
    }
    REQUIRE(out.frags.front().page == out.frags.back().page);  // one page
    return out;
  }

  // Frees of a page before the next cut retires it.
  void before_retire(const PageOut& out) {
    switch (out.path) {
      case Path::kWatchedOwnerLast:
        break;
      case Path::kDoneAtRetire:
        // The owner first, so the retirement's load is the owner's only
        // look at the count after the remote frees.
        owner_frees(out);
        r1->run(items(out, [](std::uint32_t i) { return i == 1 || i == 3; }),
                Freer::How::kFragRemote);
        r2->run(items(out, [](std::uint32_t i) { return i == 5 || i == 7; }),
                Freer::How::kFragRemote);
        break;
      case Path::kWatchedRemoteLast:
        owner_frees(out);
        break;
      case Path::kMergedRemoteLast:
      case Path::kMergedOwnerLast:
      case Path::kMergedOwnerRelease:
        r3->run(items(out, [](std::uint32_t i) { return i == 1; }), Freer::How::kFragRemote);
        break;
    }
  }

  // Frees of a page after it retired (the next page is being cut).
  void after_retire(const PageOut& out) {
    switch (out.path) {
      case Path::kWatchedOwnerLast:
        CHECK(frags->is_watched(out.frags[0].page));
        r1->run(items(out, [](std::uint32_t i) { return i == 1 || i == 3; }),
                Freer::How::kFragRemote);
        r2->run(items(out, [](std::uint32_t i) { return i == 5 || i == 7; }),
                Freer::How::kFragRemote);
        owner_frees(out);  // the last one finds the page done
        break;
      case Path::kDoneAtRetire:
        break;
      case Path::kWatchedRemoteLast:
        CHECK(frags->is_watched(out.frags[0].page));
        r1->run(items(out, [](std::uint32_t i) { return i == 1 || i == 3; }),
                Freer::How::kFragRemote);
        r2->run(items(out, [](std::uint32_t i) { return i == 5 || i == 7; }),
                Freer::How::kFragRemote);
        frags->reclaim();  // finds it done
        break;
      case Path::kMergedRemoteLast:
        CHECK_FALSE(frags->is_watched(out.frags[0].page));
        owner_frees(out);
        r1->run(items(out, [](std::uint32_t i) { return i == 3 || i == 5; }),
                Freer::How::kFragRemote);
        // One free holding the last reference: its load is its only acquire.
        r2->run(items(out, [](std::uint32_t i) { return i == 7; }), Freer::How::kFragRemote);
        break;
      case Path::kMergedOwnerLast:
        CHECK_FALSE(frags->is_watched(out.frags[0].page));
        owner_frees(out, 0, 6);  // 0, 2, 4: before the remote frees
        r1->run(items(out, [](std::uint32_t i) { return i == 3 || i == 5; }),
                Freer::How::kFragRemote);
        r2->run(items(out, [](std::uint32_t i) { return i == 7; }), Freer::How::kFragRemote);
        // 6 holds the last reference: the load is the owner's only acquire.
        owner_frees(out, 6);
        break;
      case Path::kMergedOwnerRelease: {
        CHECK_FALSE(frags->is_watched(out.frags[0].page));
        r1->run(items(out, [](std::uint32_t i) { return i == 3 || i == 5; }),
                Freer::How::kFragRemote);
        // 7 is handed out first; the owner then rewrites its own fragments
        // and frees them. 7's free, the last, recycles the page, and the
        // sync reads the owner's new words: ordered only by the owner's
        // release on its frees.
        r2->start(items(out, [](std::uint32_t i) { return i == 7; }), Freer::How::kFragRemote,
                  true);
        PageOut mine = out;
        mine.tag += 1u << 20;
        for (std::uint32_t i = 0; i < kPerPage; i += 2) {
          write_words(out.frags[i].va, kWords, mine.tag * kPerPage + i);
        }
        owner_frees(mine);
        r2->go();
        r2->wait();
        break;
      }
    }
  }

  void finish() {
    CHECK(r1->corrupt() == 0);
    CHECK(r2->corrupt() == 0);
    CHECK(r3->corrupt() == 0);
    r1.reset();
    r2.reset();
    r3.reset();
    frags.reset();
    pool.reset();
    CHECK(provider.allocated_blocks() == 0);
  }

  HeapProvider provider;
  ReadingDma dma;
  Pool::Handle pool;
  std::optional<Frags> frags;
  // r1 and r2 free after retirement; r3 only makes the merged paths' pages
  // merged (one free before retirement), so nothing r1 released reaches the
  // owner through the next page's count before the recycled page is reused.
  std::optional<Freer> r1, r2, r3;
};

void run_path(Path path) {
  Harness h;
  std::optional<PageOut> prev;
  std::vector<Page*> pages_seen;
  for (int round = 0; round < kRoundsPerPath; ++round) {
    PageOut cur = h.cut_page(static_cast<std::uint64_t>(round) + 1, path);  // retires prev
    pages_seen.push_back(cur.frags[0].page);
    if (prev) h.after_retire(*prev);
    h.before_retire(cur);
    prev = std::move(cur);
  }
  // Every finished page was cut again: a few pages served every round
  // (their bytes were rewritten), so the test sees each path's reuse.
  std::sort(pages_seen.begin(), pages_seen.end());
  CHECK(std::unique(pages_seen.begin(), pages_seen.end()) - pages_seen.begin() <= 8);
  const Frag extra = h.frags->alloc_frag(kFragBytes);  // retires the last page
  REQUIRE(extra);
  h.after_retire(*prev);
  h.frags->free_frag(extra.page);
  h.finish();
}

TEST_CASE("watched page, the owner's free is the last") { run_path(Path::kWatchedOwnerLast); }
TEST_CASE("every fragment back before the page retires") { run_path(Path::kDoneAtRetire); }
TEST_CASE("watched page, a remote free is the last, reclaim() finds it") {
  run_path(Path::kWatchedRemoteLast);
}
TEST_CASE("merged page, a remote free is the last: back through the ring") {
  run_path(Path::kMergedRemoteLast);
}
TEST_CASE("merged page, the owner's free is the last") { run_path(Path::kMergedOwnerLast); }
TEST_CASE("merged page, the owner's frees release its writes to the remote last free") {
  run_path(Path::kMergedOwnerRelease);
}

TEST_CASE("put_page: two references dropped on two other threads, back through the ring") {
  Harness h;
  h.frags.reset();  // whole pages straight from the pool
  std::vector<Page*> pages_seen;
  for (std::uint64_t round = 1; round <= 2 * kRoundsPerPath; ++round) {
    Page* page = h.pool->alloc();
    REQUIRE(page != nullptr);
    pages_seen.push_back(page);
    const std::uint32_t half = kPage / 16;  // words in half a page
    write_words(page->va, half, 2 * round);
    write_words(page->va + kPage / 2, half, 2 * round + 1);
    Pool::ref_page(page);
    h.r1->run({{page, page->va, half, 2 * round}}, Freer::How::kPutPage);
    h.r2->run({{page, page->va + kPage / 2, half, 2 * round + 1}}, Freer::How::kPutPage);
  }
  std::sort(pages_seen.begin(), pages_seen.end());
  CHECK(std::unique(pages_seen.begin(), pages_seen.end()) - pages_seen.begin() <= 8);
  h.finish();
}

}  // namespace
}  // namespace pagefrag
