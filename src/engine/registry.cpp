// SPDX-License-Identifier: BSL-1.0
// The core registry: see registry.hpp.
//
// Each index has an entry: one word (the address of the core holding the index, a "being
// freed" bit, and in the top bits the number of pins on it) and the generation of the last core
// freed there. Lifecycle of a word: 0 (free) -> address (allocate_core, registry mutex held) ->
// address + pins (pin_core: a CAS that only succeeds on a published core not being freed) ->
// address | freeing (maybe_recycle, once the core is retired and unreferenced: no new pin can
// be taken from then on) -> 0 (whoever sees the pins reach zero with the bit set: the
// recycler, or the last unpin; it frees the core). The address is cleared under the registry
// mutex, with the index given back, so an index is reused only once its old core is gone.
#include "registry.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/thread_pool.hpp>

namespace wq::detail {

namespace {

constexpr std::uint32_t chunk_size = 1024;
constexpr std::uint32_t max_chunks = (core_index_mask + 1) / chunk_size;

// The index word's layout (x86-64 and AArch64 user addresses fit in 48 bits; cores are
// 64-byte aligned, so bit 0 of an address is free for the "being freed" mark).
constexpr std::uint64_t pin_one = std::uint64_t{1} << 48;
constexpr std::uint64_t address_mask = pin_one - 2;
constexpr std::uint64_t freeing_bit = 1;
constexpr std::uint64_t max_pins = (~std::uint64_t{0}) >> 48;

std::uint64_t pins_of(std::uint64_t word) noexcept { return word >> 48; }
queue_core* core_of(std::uint64_t word) noexcept {
  // Safety: the word holds the address allocate_core stored, plus the mark and pin bits
  // masked off here; pin_core only returns it while the pin keeps the core alive.
  return reinterpret_cast<queue_core*>(static_cast<std::uintptr_t>(word & address_mask));
}

struct index_entry {
  std::atomic<std::uint64_t> word{0};  // see the file comment
  std::uint32_t gen = 0;  // registry mutex: generation of the last core freed at this index
};

// Cores are carved from slabs: making a queue costs no heap allocation of its own, and a freed
// core stays constructed in its slab (its grown worker slots too) for the next queue, which
// resets what it uses (create_core). A slab goes back to the heap once none of its cores is in
// use and the registry can hand out more than spare_limit cores without it.
constexpr std::uint32_t cores_per_slab = 64;
constexpr std::uint32_t not_listed = ~std::uint32_t{0};

// How many cores the registry may keep ready for new queues in slabs none of whose cores is in
// use: at most spare_limit x sizeof(queue_core) bytes (under 1 MB) whatever the number of
// queues made. A slab with a core in use stays whole: one long-lived queue can hold the memory
// of 63 others.
constexpr std::size_t spare_limit = 1024;

struct core_slab {
  // The cores first: core i lives at byte i * sizeof(queue_core) from the slab's start
  // (slab_of). Each is constructed when first handed out.
  alignas(queue_core) std::byte storage[cores_per_slab][sizeof(queue_core)];
  std::uint32_t made = 0;   // cores constructed: positions [0, made)
  std::uint32_t out = 0;    // cores handed out by allocate_core and not yet freed
  std::uint32_t nfree = 0;  // constructed cores given back: their positions, free_pos[0, nfree)
  std::uint32_t room_pos = not_listed;  // position in registry::with_room, if listed
  std::array<std::uint8_t, cores_per_slab> free_pos{};
};
static_assert(cores_per_slab <= 256, "free_pos holds positions in a byte");
static_assert(std::is_standard_layout_v<core_slab>, "slab_of relies on storage being first");

// Returns: the core constructed at position `pos` of `s`. Requires pos < s->made.
queue_core* core_at(core_slab* s, std::uint32_t pos) noexcept {
  // Safety: allocate_core constructed a queue_core in storage[pos] (pos < made); it lives
  // until the slab is released.
  return std::launder(reinterpret_cast<queue_core*>(s->storage[pos]));
}

// Returns: the slab `core` lives in.
core_slab* slab_of(queue_core* core) noexcept {
  // Safety: container_of. `core` was constructed at storage[reg.slab_pos] of its slab, and
  // storage is the first member of a standard-layout struct, so the slab starts slab_pos cores
  // before it.
  std::byte* first =
      reinterpret_cast<std::byte*>(core) - std::size_t{core->reg.slab_pos} * sizeof(queue_core);
  return std::launder(reinterpret_cast<core_slab*>(first));
}

// Immortal: the index table must stay addressable for stale ids and pins at any time,
// including during static destruction.
struct registry {
  std::mutex mu;
  std::array<std::atomic<index_entry*>, max_chunks> chunks{};
  std::uint32_t next_index = 1;             // guarded by mu; index 0 means "no queue"
  std::vector<std::uint32_t> free_indexes;  // guarded by mu: given back by freed cores
  // Guarded by mu: every core allocate_core handed out and not yet freed (each at its
  // reg.in_use_pos). Reserved alongside free_indexes, so freeing never grows either.
  std::vector<queue_core*> in_use;
  // Guarded by mu: the slabs with a core to hand out (given back, or not made yet), the last
  // listed used first. Reserved for every slab, so freeing a core never grows it.
  std::vector<core_slab*> with_room;
  std::size_t slabs = 0;  // guarded by mu: slabs allocated
  std::size_t room = 0;   // guarded by mu: cores the slabs can hand out (cores_per_slab - out each)
  std::size_t made = 0;   // guarded by mu: cores constructed in the slabs
};

registry& reg() {
  static registry* r = new registry;  // Safety: intentionally leaked (see above).
  return *r;
}

// Returns: the entry of `index`, or nullptr if its chunk was never made. Lock-free.
index_entry* entry_of(std::uint32_t index) noexcept {
  if (index == 0 || index > core_index_mask) return nullptr;
  // Safety (acquire): pairs with the release that published the constructed chunk.
  index_entry* chunk = reg().chunks[index / chunk_size].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index % chunk_size];
}

// Takes `core` off r.in_use in O(1) (the last entry moves into its place). Requires r.mu held.
void leave_in_use(registry& r, queue_core* core) noexcept {
  queue_core* last = r.in_use.back();
  r.in_use[core->reg.in_use_pos] = last;
  last->reg.in_use_pos = core->reg.in_use_pos;
  r.in_use.pop_back();
}

// Puts `core` on r.in_use. Requires r.mu held and capacity for it (reserved by allocate_core).
void enter_in_use(registry& r, queue_core* core) noexcept {
  core->reg.in_use_pos = static_cast<std::uint32_t>(r.in_use.size());
  r.in_use.push_back(core);  // no allocation: reserved before the index was handed out
}

// Lists `s` among the slabs with room. Requires r.mu held; capacity reserved (allocate_core).
void enter_with_room(registry& r, core_slab* s) noexcept {
  s->room_pos = static_cast<std::uint32_t>(r.with_room.size());
  r.with_room.push_back(s);  // no allocation: reserved when the slab was made
}

// Takes `s` off the slabs with room in O(1). Requires r.mu held and `s` listed.
void leave_with_room(registry& r, core_slab* s) noexcept {
  core_slab* last = r.with_room.back();
  r.with_room[s->room_pos] = last;
  last->room_pos = s->room_pos;
  r.with_room.pop_back();
  s->room_pos = not_listed;
}

// Destroys the cores made in a slab that is off every list and gives its memory to the heap.
// Their members free only memory of their own (the pool, executor and watch were let go when
// each queue retired): nothing here calls back into the registry. Requires: no lock held.
void release_slab(core_slab* s) noexcept {
  for (std::uint32_t i = 0; i < s->made; ++i) core_at(s, i)->~queue_core();
  s->~core_slab();
  ::operator delete (s, std::align_val_t{alignof(core_slab)});
}

// Gives the index back and returns the core to its slab (kept constructed for the next queue),
// releasing the slab if none of its cores is in use and the others have room enough. Requires: no
// pin can be taken on it any more (its word is being freed with no pins, or it was never published
// to anyone), no lock held.
void free_core(queue_core* core) noexcept {
  auto& r = reg();
  const std::uint32_t index = core->reg.index;
  core_slab* released = nullptr;
  {
    std::lock_guard lk(r.mu);
    index_entry* e = entry_of(index);
    e->gen = core->reg.gen;
    // Safety (release): nobody can pin a word being freed, but a pin_core refused on the cleared
    // word must still see what the queue's end did, as one refused on the mark does (this
    // thread acquired that through the mark's RMW or the last unpin).
    e->word.store(0, std::memory_order_release);
    leave_in_use(r, core);
    r.free_indexes.push_back(index);  // no allocation: reserved when the index was first used
    core_slab* s = slab_of(core);
    if (s->room_pos == not_listed) enter_with_room(r, s);
    s->free_pos[s->nfree++] = core->reg.slab_pos;
    --s->out;
    ++r.room;
    if (s->out == 0 && r.room > spare_limit) {
      leave_with_room(r, s);
      --r.slabs;
      r.room -= cores_per_slab;
      r.made -= s->made;
      released = s;
    }
  }
  if (released != nullptr) release_slab(released);
}

// The snapshot for_each_core walks, kept per thread so a walk allocates only when the number
// of cores in use grew beyond any earlier walk on this thread. Taken (moved out) while a walk
// runs, so a walk nested in fn() makes its own.
thread_local std::vector<std::uint32_t> t_snapshot;

}  // namespace

core_pin pin_core(std::uint32_t index) noexcept {
  index_entry* e = entry_of(index);
  if (e == nullptr) return {};
  // Safety (acquire): pairs with the release of the RMW that set the "being freed" bit, so a
  // caller told "none" also sees what the queue's end did to its items (their state words).
  std::uint64_t w = e->word.load(std::memory_order_acquire);
  for (;;) {
    if (core_of(w) == nullptr || (w & freeing_bit) != 0) return {};  // none there, or going
    if (pins_of(w) == max_pins) {  // 65535 pins held at once on one core: wait for one to go
      std::this_thread::yield();
      w = e->word.load(std::memory_order_acquire);
      continue;
    }
    // Safety (acquire): pairs with allocate_core's release store of the address, so the
    // constructed core is seen; a failed CAS reloads `w` and tries again.
    if (e->word.compare_exchange_weak(w, w + pin_one, std::memory_order_acquire,
                                      std::memory_order_acquire))
      return {core_of(w), index};
  }
}

void unpin_core(std::uint32_t index) noexcept {
  index_entry* e = entry_of(index);
  // Safety (acq_rel): release orders this pinner's uses of the core before the free; acquire,
  // when this is the last pin on a core being freed, orders every other holder's uses before
  // it too (they released before the count reached here).
  const std::uint64_t w = e->word.fetch_sub(pin_one, std::memory_order_acq_rel);
  if ((w & freeing_bit) != 0 && pins_of(w) == 1) free_core(core_of(w));
}

// The owned pool and the histograms are freed outside the mutex: freeing the pool destroys
// handlers that may release references on other cores.
void maybe_recycle(queue_core* core, core_lock& lk) noexcept {
  // Safety (acquire): pairs with the release decrements, so the last holder's uses of the core
  // happen before it is freed.
  if (core->reg.live || core->reg.recycled || core->reg.outstanding_handlers != 0 ||
      core->reg.refs.load(std::memory_order_acquire) != 0)
    return;
  core->reg.recycled = true;
  std::unique_ptr<boost::asio::thread_pool> pool = std::move(core->reg.own_pool);
  latency_histograms::pointer latency = std::move(core->stats.latency);
  lk.unlock();
  // The pool was joined by destroy() or by the orphan's helper thread before they let go of
  // their references, so no thread of it runs this.
  pool.reset();
  latency.reset();
  // From here no new pin can be taken; the pins still held (lookups by a stale id in
  // progress, walks) keep the core until the last of them goes.
  // Safety (acq_rel): acquire orders the uses of pinners that have let go before the free;
  // release publishes this thread's before the last unpin's free.
  const std::uint64_t w =
      entry_of(core->reg.index)->word.fetch_or(freeing_bit, std::memory_order_acq_rel);
  if (pins_of(w) == 0) free_core(core);
}

std::size_t registry_cores_in_memory() noexcept {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  return r.made;
}

void add_ref(queue_core* core) noexcept {
  // Safety (relaxed): the caller holds a reference, so the count cannot reach zero meanwhile.
  core->reg.refs.fetch_add(1, std::memory_order_relaxed);
}

void drop_ref(queue_core* core) noexcept {
  // Safety (acq_rel): release publishes this holder's uses; the last one acquires the others'.
  if (core->reg.refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::unique_lock lk(core->mu);
  maybe_recycle(core, lk);
}

// fn() runs with no registry lock held (it takes core mutexes, which nest outside the
// registry's), over a snapshot of the indexes in use, each pinned while fn() runs: a core freed
// meanwhile is skipped, one retired is still addressable, and fn() checks liveness and id under
// the core's mutex.
void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg) {
  auto& r = reg();
  std::vector<std::uint32_t> snap = std::move(t_snapshot);
  snap.clear();
  bool copied = false;
  std::uint32_t end = 0;
  {
    std::lock_guard lk(r.mu);
    end = r.next_index;
    try {
      snap.reserve(r.in_use.size());
      for (const queue_core* c : r.in_use) snap.push_back(c->reg.index);
      copied = true;
    } catch (const std::bad_alloc&) {
      // Out of memory: walk every index ever used instead (slower, same answer).
    }
  }
  auto visit = [&](std::uint32_t index) {
    core_pin pin = pin_core(index);
    if (pin) fn(pin.get(), arg);
  };
  if (copied) {
    for (std::uint32_t index : snap) visit(index);
    t_snapshot = std::move(snap);
    return;
  }
  for (std::uint32_t index = 1; index < end; ++index) visit(index);
}

queue_core* allocate_core() {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  const bool fresh = r.free_indexes.empty();
  if (fresh) {
    if (r.next_index > core_index_mask) throw std::length_error("wq: too many live queues");
    // Room for the new index in both lists first, so neither enter_in_use nor free_core has to
    // grow a vector. (Doubling, as push_back would, so n indexes copy O(n) entries in all.)
    if (r.in_use.capacity() < r.next_index) r.in_use.reserve(2 * std::size_t{r.next_index});
    if (r.free_indexes.capacity() < r.next_index)
      r.free_indexes.reserve(2 * std::size_t{r.next_index});
    auto& slot = r.chunks[r.next_index / chunk_size];
    if (slot.load(std::memory_order_relaxed) == nullptr) {
      auto* chunk = new index_entry[chunk_size];  // Safety: never freed (see registry).
      // Safety (release): pairs with entry_of's acquire, publishing the constructed chunk.
      slot.store(chunk, std::memory_order_release);
    }
  }
  const std::uint32_t index = fresh ? r.next_index : r.free_indexes.back();
  // The core is made under the registry mutex: an index is handed out with its core or not
  // at all (out of memory changes nothing, but for an empty slab kept for the next queue).
  if (r.with_room.empty()) {
    if (r.with_room.capacity() < r.slabs + 1) r.with_room.reserve(2 * (r.slabs + 1));
    void* mem = ::operator new (sizeof(core_slab), std::align_val_t{alignof(core_slab)});
    // Safety: `mem` is raw storage of core_slab's size and alignment, from the heap; the
    // constructor only sets the counts (no core is made yet) and cannot throw.
    auto* added = ::new (mem) core_slab;  // (not value-initialised: no zeroing of the storage)
    ++r.slabs;
    r.room += cores_per_slab;
    enter_with_room(r, added);
  }
  core_slab* s = r.with_room.back();
  queue_core* core = nullptr;
  if (s->nfree != 0) {
    core = core_at(s, s->free_pos[s->nfree - 1]);
    --s->nfree;
  } else {
    // Safety: storage[made] is raw storage of queue_core's size and alignment in the slab. (A
    // throwing constructor, std::condition_variable's in principle, changes nothing.)
    core = ::new (s->storage[s->made]) queue_core();
    // Safety (static_cast): made < cores_per_slab (64) here, so it fits slab_pos's byte.
    core->reg.slab_pos = static_cast<std::uint8_t>(s->made);
    ++s->made;
    ++r.made;
  }
  ++s->out;
  --r.room;
  if (s->out == cores_per_slab) leave_with_room(r, s);
  if (fresh)
    ++r.next_index;
  else
    r.free_indexes.pop_back();
  index_entry* e = entry_of(index);
  core->reg.index = index;
  // A new queue never starts at the generation of a stale id for this index.
  core->reg.gen = (e->gen + 1) & core_gen_mask;
  if (core->reg.gen == 0) core->reg.gen = 1;
  enter_in_use(r, core);
  // Safety (release): pairs with pin_core's acquire, publishing the constructed core.
  e->word.store(reinterpret_cast<std::uintptr_t>(core), std::memory_order_release);
  return core;
}

void free_unused_core(queue_core* core) noexcept {
  index_entry* e = entry_of(core->reg.index);
  // Safety (acq_rel): as maybe_recycle's mark; a stale id's pin may have raced in (its
  // generation cannot match, but its pin must be let go before the free).
  const std::uint64_t w = e->word.fetch_or(freeing_bit, std::memory_order_acq_rel);
  if (pins_of(w) == 0) free_core(core);
}

}  // namespace wq::detail
