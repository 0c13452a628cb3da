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
};

registry& reg() {
  static registry* r = new registry;  // Safety: intentionally leaked (see above).
  return *r;
}

}  // namespace

void push_free(queue_core* core) {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  r.free_cores.push_back(core);
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
  lk.unlock();
  // The pool was joined by destroy() or by the orphan's helper thread before they let go of
  // their references, so no thread of it runs this.
  pool.reset();
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

void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg) {
  std::uint32_t end = 0;
  {
    auto& r = reg();
    std::lock_guard lk(r.mu);
    end = r.next_index;
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
    return core;
  }
  if (r.next_index > core_index_mask) throw std::length_error("wq: too many live queues");
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
  return &chunk[index % chunk_size];
}

}  // namespace wq::detail
