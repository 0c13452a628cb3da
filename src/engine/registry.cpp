// SPDX-License-Identifier: BSL-1.0
// The core registry: see registry.hpp.
#include "registry.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

#include <boost/asio/thread_pool.hpp>

namespace wq::detail {

namespace {

constexpr std::uint32_t chunk_size = 1024;
constexpr std::uint32_t max_chunks = (core_index_mask + 1) / chunk_size;

// Immortal: cores must stay addressable for stale handlers and item states at any time,
// including during static destruction.
struct registry {
  std::mutex mu;
  std::array<std::atomic<queue_core*>, max_chunks> chunks{};
  std::uint32_t next_index = 1;         // guarded by mu; index 0 means "no queue"
  std::vector<queue_core*> free_cores;  // guarded by mu: retired, no handler left
  // Guarded by mu: every core allocate_core handed out and push_free has not taken back (each
  // at its reg.in_use_pos). Reserved alongside free_cores, so giving a core back never grows it.
  std::vector<queue_core*> in_use;
};

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
  r.in_use.push_back(core);  // no allocation: reserved before the core was handed out
}

// The snapshot for_each_core walks, kept per thread so a walk allocates only when the number
// of cores in use grew beyond any earlier walk on this thread. Taken (moved out) while a walk
// runs, so a walk nested in fn() makes its own.
thread_local std::vector<queue_core*> t_snapshot;

registry& reg() {
  static registry* r = new registry;  // Safety: intentionally leaked (see above).
  return *r;
}

}  // namespace

void push_free(queue_core* core) noexcept {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  r.free_cores.push_back(core);  // no allocation: reserved when the core was first made
  leave_in_use(r, core);
}

// The owned pool is freed outside the mutex: freeing it destroys handlers that may release
// references on other cores.
void maybe_recycle(queue_core* core, std::unique_lock<std::mutex>& lk) noexcept {
  // Safety (acquire): pairs with the release decrements, so the last holder's uses of the core
  // happen before it is reused.
  if (core->reg.live || core->reg.recycled || core->reg.outstanding_handlers != 0 ||
      core->reg.refs.load(std::memory_order_acquire) != 0)
    return;
  core->reg.recycled = true;
  std::unique_ptr<boost::asio::thread_pool> pool = std::move(core->reg.own_pool);
  // The latency histograms go back to the heap with the queue (a session's 640 bytes); the
  // next queue on this core makes its own at its first sample. Its other samples' state is
  // zeroed by create_core (any sample implies the queue counted a queueing).
  std::unique_ptr<latency_histograms> latency = std::move(core->stats.latency);
  lk.unlock();
  // The pool was joined by destroy() or by the orphan's helper thread before they let go of
  // their references, so no thread of it runs this.
  pool.reset();
  latency.reset();
  push_free(core);
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
// registry's), over a snapshot of the cores in use: a core recycled or reused meanwhile is
// still addressable, and fn() checks liveness and id under the core's mutex.
void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg) {
  auto& r = reg();
  std::vector<queue_core*> snap = std::move(t_snapshot);
  snap.clear();
  bool copied = false;
  std::uint32_t end = 0;
  {
    std::lock_guard lk(r.mu);
    end = r.next_index;
    try {
      snap.assign(r.in_use.begin(), r.in_use.end());
      copied = true;
    } catch (const std::bad_alloc&) {
      // Out of memory: walk every core ever made instead (slower, same answer).
    }
  }
  if (copied) {
    for (queue_core* c : snap) fn(c, arg);
    t_snapshot = std::move(snap);
    return;
  }
  for (std::uint32_t index = 1; index < end; ++index) {
    if (queue_core* c = lookup_core(index)) fn(c, arg);
  }
}

queue_core* lookup_core(std::uint64_t id) noexcept {
  const auto index = static_cast<std::uint32_t>(id & core_index_mask);
  if (index == 0) return nullptr;
  // Safety (acquire): pairs with the release that published the chunk after constructing it.
  queue_core* chunk = reg().chunks[index / chunk_size].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index % chunk_size];
}

queue_core* allocate_core() {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  if (!r.free_cores.empty()) {
    queue_core* core = r.free_cores.back();
    r.free_cores.pop_back();
    enter_in_use(r, core);  // capacity: it held this core before push_free took it off
    return core;
  }
  if (r.next_index > core_index_mask) throw std::length_error("wq: too many live queues");
  // Room for the new core in both lists first, so neither enter_in_use nor a later push_free
  // of this core has to grow a vector.
  // (Doubling, as push_back would, so creating n cores copies O(n) pointers in all.)
  if (r.in_use.capacity() < r.next_index) r.in_use.reserve(2 * std::size_t{r.next_index});
  if (r.free_cores.capacity() < r.next_index) r.free_cores.reserve(2 * std::size_t{r.next_index});
  const std::uint32_t index = r.next_index++;
  auto& slot = r.chunks[index / chunk_size];
  queue_core* chunk = slot.load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = new queue_core[chunk_size];  // Safety: never freed (see registry).
    for (std::uint32_t i = 0; i < chunk_size; ++i)
      chunk[i].reg.index = (index / chunk_size) * chunk_size + i;
    // Safety (release): pairs with lookup_core's acquire, publishing the constructed chunk.
    slot.store(chunk, std::memory_order_release);
  }
  queue_core* core = &chunk[index % chunk_size];
  enter_in_use(r, core);
  return core;
}

}  // namespace wq::detail
