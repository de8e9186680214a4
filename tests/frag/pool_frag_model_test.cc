// SPDX-License-Identifier: BSD-3-Clause
// Stateful model test (rapidcheck rc::state) of PagePool + FragmentAllocator.
//
// The model is written from the specification alone: it carves fragments by
// the page_pool_alloc() rules (round to the alignment; a whole page when
// 2 * size > page bytes; the last fragment that fits takes the rest of the
// page) and counts the pages the pool must have handed out. Commands drive
// the owner paths (Alloc, AllocBulk, RecycleDirect, AllocFrag, AllocFrags,
// FreeFragOwner, FreeFragsRun with free_frags, PutPage direct, Reclaim) and
// the any-thread paths (RecycleRemote, FreeFragRemote, FreeFragsRun with
// free_frags_remote, PutPage not direct) and Destroy, after which only the
// any-thread returns remain.
// After every command the system must match:
//   - each fragment's page, offset and truesize as the model predicts; va =
//     page va + offset, iova = page dma + offset, offset aligned;
//   - all live fragments and pages pairwise disjoint in memory and inside
//     their pages (an early recycle would make two of them overlap);
//   - in-flight pages = pages the test holds + pages with live fragments +
//     the fragment page + watched pages (after Reclaim, no watched page
//     without live fragments); a watched page with nothing out had a
//     remote last free (the owner's last free recycles at once);
//   - held bytes = the provider's own count of allocated blocks x page bytes,
//     high water >= every held value seen;
//   - stats: alloc_fast = pages handed out by the model's count, and pages
//     handed out - in flight = pages returned by the four recycle counters;
//   - after Destroy, the provider holds exactly the pages still out, and at
//     the end every page is back (HeapProvider aborts on a double release).
// With MockDma (strict and bounce) a DeviceWrite command writes through a
// fragment's IOVA and reads it back on the CPU after sync_for_cpu, and at the
// end every mapping must have been unmapped exactly once with no DMA-API
// misuse counted; in strict mode, where recycling syncs whole pages, the
// device must never have written bytes the CPU still owned. Each of the four
// cases runs RC_PARAMS=max_success=250 sequences (BUILD): 1000 per run.
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "pagefrag/dma/mock_dma.h"
#include "pagefrag/dma/no_dma.h"
#include "pagefrag/frag/fragment_allocator.h"
#include "pagefrag/memory/heap_provider.h"
#include "pagefrag/pool/page_pool.h"
#include "tests/support/rc_doctest.h"

namespace pagefrag {
namespace {

// ---------------------------------------------------------------- the model

struct MFrag {
  int page;  // model page id
  std::uint32_t offset;
  std::uint32_t truesize;
  bool received = false;  // the device wrote it and the CPU took it (DeviceWrite)
};

struct Model {
  std::uint32_t page_bytes = 0;
  std::uint32_t align = 64;
  bool destroyed = false;
  int next_page = 0;
  int cur_page = -1;  // the fragment page, -1 for none
  std::uint32_t cur_off = 0;
  std::uint32_t frag_size = 0;  // the last request carved as a fragment (0: none yet)
  std::vector<MFrag> frags;
  std::vector<int> pages;                // whole pages the test holds (model ids)
  std::uint64_t handed_out = 0;          // pages the pool handed out
  std::map<int, bool> last_free_remote;  // per page id: was its latest free remote?

  // The spec's page_pool_alloc(): the fragment a request gets, or nullopt.
  // Updates the carving state.
  std::optional<MFrag> carve(std::uint32_t size) {
    const std::uint64_t r = (std::uint64_t{size} + align - 1) / align * align;
    if (size == 0 || r > page_bytes) return std::nullopt;
    if (2 * r > page_bytes) {
      ++handed_out;
      return MFrag{next_page++, 0, page_bytes};
    }
    if (cur_page < 0 || cur_off + r > page_bytes) {
      // The fragment page retires only now, when a request needs room (the
      // kernel's page_pool_alloc_frag()); the next page comes from the pool.
      cur_page = next_page++;
      cur_off = 0;
      ++handed_out;
    }
    frag_size = size;
    MFrag f{cur_page, cur_off, static_cast<std::uint32_t>(r)};
    cur_off += static_cast<std::uint32_t>(r);
    if (cur_off + r > page_bytes) {  // no further fragment of this size fits
      f.truesize = page_bytes - f.offset;
      cur_off = page_bytes;
    }
    return f;
  }

  // The spec's alloc_frags(size, count): what count carve() calls return,
  // except that when the request repeats the last fragment size, the
  // fragment page is used up (or there is none) and at least a fresh page's
  // worth is still wanted, that page's fragments are all cut and it is
  // retired at once: it never becomes the fragment page.
  std::vector<MFrag> carve_bulk(std::uint32_t size, std::size_t count) {
    std::vector<MFrag> out;
    while (out.size() < count) {
      const std::uint64_t r = (std::uint64_t{size} + align - 1) / align * align;
      const bool whole = size != 0 && size == frag_size &&
                         (cur_page < 0 || cur_off + r > page_bytes) &&
                         count - out.size() >= page_bytes / r;
      std::optional<MFrag> f = carve(size);
      if (!f) break;
      out.push_back(*f);
      if (whole) {
        while (cur_off < page_bytes) out.push_back(*carve(size));
        cur_page = -1;
      }
    }
    return out;
  }
};

// ------------------------------------------------------- the system under test

template <class Dma>
struct Sut {
  using Pool = PagePool<HeapProvider, Dma>;
  using Frags = FragmentAllocator<Pool>;

  Sut(std::uint32_t page_size, std::unique_ptr<Dma> dma_backend) : dma(std::move(dma_backend)) {
    auto p = HeapProvider::create(
        {.page_size = page_size, .max_order = 0, .capacity = std::size_t{page_size} * 1024});
    RC_ASSERT(p.ok());
    provider.emplace(*std::move(p));
    // Recycling syncs the whole page for the device (a fragment allocator
    // rejects a window that misses part of it), so in strict mode any device
    // write into bytes the CPU still owns is a missed sync.
    const auto max_len = static_cast<std::uint32_t>(page_size);
    auto pp = Pool::create(*provider, *dma,
                           {.pool_size = 16, .max_len = max_len, .flags = kPagePoolAllFlags});
    RC_ASSERT(pp.ok());
    pool = *std::move(pp);
    pool_id = pool->id();
    frag_alloc.emplace(*Frags::create(*pool));
  }

  std::unique_ptr<Dma> dma;
  std::optional<HeapProvider> provider;
  typename Pool::Handle pool;
  std::optional<Frags> frag_alloc;
  std::uint64_t pool_id = 0;
  std::vector<Frag> frags;   // parallel to Model::frags
  std::vector<Page*> pages;  // parallel to Model::pages
  std::map<int, Page*> page_of_id;
  std::size_t high_water_seen = 0;
};

template <class Dma>
using Cmd = rc::state::Command<Model, Sut<Dma>>;

// The post-conditions that hold after every command (module comment).
template <class Dma>
void check_invariants(const Model& m, Sut<Dma>& s) {
  using Pool = typename Sut<Dma>::Pool;
  const std::size_t page_bytes = m.page_bytes;
  // Disjoint and inside their pages.
  std::vector<std::pair<const std::byte*, const std::byte*>> ranges;
  std::set<Page*> live_pages;
  for (const Frag& f : s.frags) {
    RC_ASSERT(f.offset + std::size_t{f.truesize} <= page_bytes);
    RC_ASSERT(f.offset % m.align == 0);
    RC_ASSERT(f.va == f.page->va + f.offset);
    RC_ASSERT(f.iova == Pool::dma_addr(f.page) + f.offset);
    ranges.emplace_back(f.va, f.va + f.truesize);
    live_pages.insert(f.page);
  }
  for (Page* p : s.pages) ranges.emplace_back(p->va, p->va + page_bytes);
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    RC_ASSERT(ranges[i - 1].second <= ranges[i].first);
  RC_ASSERT(s.provider->allocated_blocks() >= live_pages.size() + s.pages.size());
  if (m.destroyed) {
    RC_ASSERT(s.provider->allocated_blocks() == live_pages.size() + s.pages.size());
    return;
  }
  // In flight: held pages + pages of live fragments + fragment page + watched.
  auto& fa = *s.frag_alloc;
  std::set<Page*> held = live_pages;
  if (fa.current_page() != nullptr) held.insert(fa.current_page());
  RC_ASSERT((fa.current_page() != nullptr) == (m.cur_page >= 0));
  if (m.cur_page >= 0) RC_ASSERT(fa.current_page() == s.page_of_id.at(m.cur_page));
  std::size_t watched_held = 0;
  for (Page* p : held) watched_held += fa.is_watched(p) ? 1 : 0;
  // A watched page with nothing out had its last free from another thread:
  // the owner's last free recycles at once.
  std::map<Page*, int> latest_id;
  for (const auto& [id, p] : s.page_of_id) latest_id[p] = std::max(latest_id[p], id);
  for (const auto& [p, id] : latest_id) {
    if (fa.is_watched(p) && live_pages.count(p) == 0) {
      RC_ASSERT(m.last_free_remote.count(id) == 1);
      RC_ASSERT(m.last_free_remote.at(id));
    }
  }
  const std::size_t inflight = s.pages.size() + held.size() + fa.watched_pages() - watched_held;
  RC_ASSERT(s.pool->handed_out() == static_cast<std::int64_t>(inflight));
  // Held bytes against the provider's own count.
  const PoolStatsSnapshot st = s.pool->stats();
  RC_ASSERT(st.held_bytes == s.provider->allocated_blocks() * page_bytes);
  s.high_water_seen = std::max(s.high_water_seen, st.held_bytes);
  RC_ASSERT(st.held_bytes_high_water >= s.high_water_seen);
  // Stats against the model.
  // Every page handed out was served by a cache hit, a refill or a slow-path
  // call (each of those serves one page itself, as the kernel counts).
  const std::uint64_t served =
      st.alloc_fast + st.alloc_refill + st.alloc_slow + st.alloc_slow_high_order;
  RC_ASSERT(served == m.handed_out);
  RC_ASSERT(served - static_cast<std::uint64_t>(st.handed_out) ==
            st.recycle_cached + st.recycle_ring + st.recycle_ring_full + st.released_after_destroy);
  RC_ASSERT(st.recycle_released_refcnt == 0u);
  // The kernel's in-flight count: pages taken from the provider, not released.
  RC_ASSERT(st.inflight == static_cast<std::int64_t>(s.provider->allocated_blocks()));
}

// ---------------------------------------------------------------- commands

template <class Dma>
struct Alloc : Cmd<Dma> {
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void apply(Model& m) const override {
    m.pages.push_back(m.next_page++);
    ++m.handed_out;
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    Page* p = s.pool->alloc();
    RC_ASSERT(p != nullptr);
    RC_ASSERT(p->ref.load() == 1);
    s.pages.push_back(p);
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override { os << "Alloc"; }
};

template <class Dma>
struct AllocBulk : Cmd<Dma> {
  std::size_t n = *rc::gen::inRange<std::size_t>(1, 9);
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void apply(Model& m) const override {
    for (std::size_t i = 0; i < n; ++i) m.pages.push_back(m.next_page++);
    m.handed_out += n;
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    std::vector<Page*> got(n);
    RC_ASSERT(s.pool->alloc_bulk(got.data(), n) == n);
    s.pages.insert(s.pages.end(), got.begin(), got.end());
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override { os << "AllocBulk(" << n << ")"; }
};

// Returns whole page i; how: 0 recycle_direct, 1 recycle (any thread),
// 2 put_page direct, 3 put_page from any thread.
template <class Dma>
struct ReturnPage : Cmd<Dma> {
  explicit ReturnPage(const Model& m)
      : i(*rc::gen::inRange<std::size_t>(0, std::max<std::size_t>(m.pages.size(), 1))),
        how(*rc::gen::inRange(0, 4)) {}
  std::size_t i;
  int how;
  void checkPreconditions(const Model& m) const override {
    RC_PRE(i < m.pages.size());
    RC_PRE(!m.destroyed || how == 1 || how == 3);  // after Destroy: any-thread paths only
  }
  void apply(Model& m) const override { m.pages.erase(m.pages.begin() + static_cast<long>(i)); }
  void run(const Model& m, Sut<Dma>& s) const override {
    using Pool = typename Sut<Dma>::Pool;
    Page* p = s.pages[i];
    s.pages.erase(s.pages.begin() + static_cast<long>(i));
    Pool* pool = static_cast<Pool*>(p->pool);
    switch (how) {
      case 0:
        pool->recycle_direct(p);
        break;
      case 1:
        pool->recycle(p);
        break;
      case 2:
        pool->put_page(p, -1, true);
        break;
      default:
        pool->put_page(p, 100, false);
        break;
    }
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override {
    static constexpr const char* kNames[] = {"RecycleDirect", "RecycleRemote", "PutPageDirect",
                                             "PutPageRemote"};
    os << kNames[how] << "(" << i << ")";
  }
};

// One fragment the system returned for a request the model answered with
// `want`: same offset and truesize, and the same Page for the same model page
// (a fresh model page is a Page nothing live is using).
template <class Dma>
void check_and_keep(const MFrag& want, const Frag& got, Model& next, Sut<Dma>& s) {
  RC_ASSERT(got.offset == want.offset);
  RC_ASSERT(got.truesize == want.truesize);
  auto [it, fresh] = s.page_of_id.try_emplace(want.page, got.page);
  RC_ASSERT(it->second == got.page);  // same model page, same Page
  if (fresh) {
    for (const Frag& f : s.frags) RC_ASSERT(f.page != got.page);
    for (Page* p : s.pages) RC_ASSERT(p != got.page);
  }
  s.frags.push_back(got);
  next.frags.push_back(want);
}

template <class Dma>
struct AllocFrag : Cmd<Dma> {
  explicit AllocFrag(const Model& m)
      : size(*rc::gen::weightedOneOf<std::uint32_t>(
            {{6, rc::gen::element<std::uint32_t>(1, 64, 100, 1500, 1856, 2048)},
             {2, rc::gen::inRange<std::uint32_t>(1, m.page_bytes + 1)},
             {1, rc::gen::element<std::uint32_t>(0, m.page_bytes / 2, m.page_bytes / 2 + 1,
                                                 m.page_bytes, m.page_bytes + 1)}})) {}
  std::uint32_t size;
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void apply(Model& m) const override {
    if (std::optional<MFrag> f = m.carve(size)) m.frags.push_back(*f);
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    Model next = m;
    const std::optional<MFrag> want = next.carve(size);
    const Frag got = s.frag_alloc->alloc_frag(size);
    RC_ASSERT(static_cast<bool>(got) == want.has_value());
    if (want) check_and_keep(*want, got, next, s);
    check_invariants(next, s);
  }
  void show(std::ostream& os) const override { os << "AllocFrag(" << size << ")"; }
};

template <class Dma>
struct FreeFrag : Cmd<Dma> {
  explicit FreeFrag(const Model& m)
      : i(*rc::gen::inRange<std::size_t>(0, std::max<std::size_t>(m.frags.size(), 1))),
        remote(*rc::gen::arbitrary<bool>()),
        by_va(*rc::gen::arbitrary<bool>()) {}
  std::size_t i;
  bool remote;
  bool by_va;
  void checkPreconditions(const Model& m) const override {
    RC_PRE(i < m.frags.size());
    RC_PRE(!m.destroyed || remote);
  }
  void apply(Model& m) const override {
    m.last_free_remote[m.frags[i].page] = remote;
    m.frags.erase(m.frags.begin() + static_cast<long>(i));
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    const Frag f = s.frags[i];
    s.frags.erase(s.frags.begin() + static_cast<long>(i));
    if (remote) {
      Sut<Dma>::Frags::free_frag_remote(f.page);
    } else if (by_va) {
      s.frag_alloc->free_frag(f.va + f.truesize / 2);
    } else {
      s.frag_alloc->free_frag(f.page);
    }
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override {
    os << (remote ? "FreeFragRemote(" : "FreeFragOwner(") << i << (by_va ? ", by va)" : ")");
  }
};

// alloc_frags(size, n): the model carves n fragments one request at a time;
// the bulk call must return exactly those, in order.
template <class Dma>
struct AllocFrags : Cmd<Dma> {
  explicit AllocFrags(const Model& m)
      : size(*rc::gen::weightedOneOf<std::uint32_t>(
            {{6, rc::gen::element<std::uint32_t>(1, 64, 100, 1500, 1856, 2048)},
             {1, rc::gen::inRange<std::uint32_t>(0, m.page_bytes + 2)}})),
        count(*rc::gen::inRange<std::size_t>(1, 80)) {}
  std::uint32_t size;
  std::size_t count;
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void apply(Model& m) const override {
    for (const MFrag& f : m.carve_bulk(size, count)) m.frags.push_back(f);
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    Model next = m;
    const std::vector<MFrag> want = next.carve_bulk(size, count);
    std::vector<Frag> got(count);
    const std::size_t k = s.frag_alloc->alloc_frags(size, got.data(), count);
    RC_ASSERT(k == want.size());
    for (std::size_t i = 0; i < k; ++i) check_and_keep(want[i], got[i], next, s);
    check_invariants(next, s);
  }
  void show(std::ostream& os) const override {
    os << "AllocFrags(" << size << ", " << count << ")";
  }
};

// A run of live fragments (in the order they were cut, so pages repeat)
// freed with one call: free_frags() on the owner, or free_frags_remote().
template <class Dma>
struct FreeFragsRun : Cmd<Dma> {
  explicit FreeFragsRun(const Model& m)
      : first(*rc::gen::inRange<std::size_t>(0, std::max<std::size_t>(m.frags.size(), 1))),
        count(*rc::gen::inRange<std::size_t>(1, 41)),
        remote(*rc::gen::arbitrary<bool>()) {}
  std::size_t first;
  std::size_t count;
  bool remote;
  void checkPreconditions(const Model& m) const override {
    RC_PRE(!m.destroyed || remote);
    RC_PRE(first + count <= m.frags.size());
  }
  void apply(Model& m) const override {
    const auto b = m.frags.begin() + static_cast<long>(first);
    for (auto it = b; it != b + static_cast<long>(count); ++it)
      m.last_free_remote[it->page] = remote;
    m.frags.erase(b, b + static_cast<long>(count));
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    const auto b = s.frags.begin() + static_cast<long>(first);
    std::vector<Page*> pages;
    for (auto it = b; it != b + static_cast<long>(count); ++it) pages.push_back(it->page);
    s.frags.erase(b, b + static_cast<long>(count));
    if (remote) {
      Sut<Dma>::Frags::free_frags_remote(pages.data(), pages.size());
    } else {
      s.frag_alloc->free_frags(pages.data(), pages.size());
    }
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override {
    os << (remote ? "FreeFragsRemote(" : "FreeFragsOwner(") << first << ", " << count << ")";
  }
};

template <class Dma>
struct Reclaim : Cmd<Dma> {
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void run(const Model& m, Sut<Dma>& s) const override {
    s.frag_alloc->reclaim();
    std::set<Page*> live;
    for (const Frag& f : s.frags) live.insert(f.page);
    if (s.frag_alloc->current_page() != nullptr) live.insert(s.frag_alloc->current_page());
    std::size_t watched_live = 0;
    for (Page* p : live) watched_live += s.frag_alloc->is_watched(p) ? 1 : 0;
    RC_ASSERT(s.frag_alloc->watched_pages() == watched_live);
    check_invariants(m, s);
  }
  void show(std::ostream& os) const override { os << "Reclaim"; }
};

template <class Dma>
struct Destroy : Cmd<Dma> {
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.destroyed); }
  void apply(Model& m) const override {
    m.destroyed = true;
    m.cur_page = -1;
  }
  void run(const Model& m, Sut<Dma>& s) const override {
    s.frag_alloc.reset();
    s.pool.reset();
    check_invariants(this->nextState(m), s);
  }
  void show(std::ostream& os) const override { os << "Destroy"; }
};

// The device writes a pattern into live fragment i through its IOVA; the
// CPU syncs the range for itself and must read exactly that pattern (bounce:
// only a correct iova and sync bring the bytes over; strict: an unsynced
// read is refused).
struct DeviceWrite : Cmd<MockDma> {
  explicit DeviceWrite(const Model& m)
      : i(*rc::gen::inRange<std::size_t>(0, std::max<std::size_t>(m.frags.size(), 1))),
        fill(*rc::gen::arbitrary<std::uint8_t>()) {}
  std::size_t i;
  std::uint8_t fill;
  // A posted buffer completes once: the device writes it, the CPU syncs it
  // and reads it, and it is not handed to the device again until recycled.
  void checkPreconditions(const Model& m) const override {
    RC_PRE(i < m.frags.size());
    RC_PRE(!m.destroyed);
    RC_PRE(!m.frags[i].received);
  }
  void apply(Model& m) const override { m.frags[i].received = true; }
  void run(const Model& m, Sut& s) const override {  // Sut<MockDma>
    const Frag& f = s.frags[i];
    const std::uint32_t len = std::min<std::uint32_t>(f.truesize, 256);
    std::vector<std::byte> data(len, static_cast<std::byte>(fill));
    RC_ASSERT(s.dma->device_write(f.iova, data).ok());
    s.pool->sync_for_cpu(f.page, f.offset, len);  // params.offset is 0
    RC_ASSERT(s.dma->check_cpu_read(f.va, len));
    RC_ASSERT(std::memcmp(f.va, data.data(), len) == 0);
    check_invariants(m, s);
  }
  void show(std::ostream& os) const override {
    os << "DeviceWrite(" << i << ", " << int{fill} << ")";
  }
};

// Runs command sequences against a fresh system each; at the end returns
// everything from "another thread" and checks every page came back.
template <class Dma, class MakeDma>
void check_model(std::uint32_t page_size, MakeDma make_dma) {
  Model initial;
  initial.page_bytes = page_size;
  Sut<Dma> sut(page_size, make_dma());
  constexpr bool kMock = std::is_same_v<Dma, MockDma>;
  if constexpr (kMock) {
    rc::state::check(
        initial, sut,
        rc::state::gen::execOneOfWithArgs<
            Alloc<Dma>, AllocBulk<Dma>, ReturnPage<Dma>, AllocFrag<Dma>, AllocFrag<Dma>,
            AllocFrags<Dma>, FreeFrag<Dma>, FreeFrag<Dma>, FreeFragsRun<Dma>, FreeFragsRun<Dma>,
            Reclaim<Dma>, Destroy<Dma>, DeviceWrite>());
  } else {
    rc::state::check(
        initial, sut,
        rc::state::gen::execOneOfWithArgs<Alloc<Dma>, AllocBulk<Dma>, ReturnPage<Dma>,
                                          AllocFrag<Dma>, AllocFrag<Dma>, AllocFrags<Dma>,
                                          FreeFrag<Dma>, FreeFrag<Dma>, FreeFragsRun<Dma>,
                                          FreeFragsRun<Dma>, Reclaim<Dma>, Destroy<Dma>>());
  }
  for (const Frag& f : sut.frags) Sut<Dma>::Frags::free_frag_remote(f.page);
  for (Page* p : sut.pages) static_cast<typename Sut<Dma>::Pool*>(p->pool)->recycle(p);
  sut.frag_alloc.reset();
  sut.pool.reset();
  RC_ASSERT(sut.provider->allocated_blocks() == 0u);
  if constexpr (kMock) {
    // Every mapping the pool made was unmapped once, and nothing misused.
    const MockDmaCounters c = sut.dma->counters();
    RC_ASSERT(sut.dma->live_mappings() == 0u);
    RC_ASSERT(c.maps == c.unmaps);
    RC_ASSERT(c.unmap_errors == 0u);
    RC_ASSERT(c.sync_errors == 0u);
    RC_ASSERT(c.device_faults == 0u);
    RC_ASSERT(c.unsynced_cpu_reads == 0u);
    if (sut.dma->mode() == MockDmaMode::kStrict) {
      RC_ASSERT(c.device_writes_to_cpu_owned == 0u);
    }
  }
  for (const StuckPagePool& stuck : stuck_page_pools()) RC_ASSERT(stuck.pool_id != sut.pool_id);
}

TEST_CASE("model: PagePool + FragmentAllocator on 4 KiB pages with NoDma") {
  PAGEFRAG_RC_CHECK("4 KiB",
                    [] { check_model<NoDma>(4096, [] { return std::make_unique<NoDma>(); }); });
}

TEST_CASE("model: PagePool + FragmentAllocator on 64 KiB pages with NoDma") {
  PAGEFRAG_RC_CHECK("64 KiB",
                    [] { check_model<NoDma>(65536, [] { return std::make_unique<NoDma>(); }); });
}

TEST_CASE("model: PagePool + FragmentAllocator on 4 KiB pages with MockDma strict") {
  PAGEFRAG_RC_CHECK("strict", [] {
    check_model<MockDma>(4096, [] {
      return std::make_unique<MockDma>(MockDmaOptions{.mode = MockDmaMode::kStrict});
    });
  });
}

TEST_CASE("model: PagePool + FragmentAllocator on 64 KiB pages with MockDma bounce") {
  PAGEFRAG_RC_CHECK("bounce", [] {
    check_model<MockDma>(65536, [] {
      return std::make_unique<MockDma>(MockDmaOptions{.mode = MockDmaMode::kBounce});
    });
  });
}

}  // namespace
}  // namespace pagefrag
