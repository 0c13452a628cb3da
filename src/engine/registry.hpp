// SPDX-License-Identifier: BSL-1.0
// src/engine/registry.hpp: the core registry (layer 0). A queue is named by an id (its core's
// index in the registry and a generation); the registry maps an index to the core that holds
// it. Cores are carved from slabs and freed once retired and unreferenced, so an id read
// from an item's state word, or an index read from another thread, is resolved through a pin
// (core_pin): while one is held the core's memory stays, whatever the queue does meanwhile.
// The registry's own state (index table chunks, free indexes, cores in use, next index, each
// core's reg.in_use_pos, each index's last generation, the slabs and their counts) is guarded
// by its mutex, which is taken
// alone or inside a core mutex, never the other way round. The per-index word (the core's
// address, a "being freed" bit and the count of pins) is changed only with atomic RMWs.
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: releases a pin on the core at `index` (core_pin's destructor); the last pin on a
/// core being freed frees it. Requires: the caller holds a pin there and not the core's mutex.
/// Memory ordering: release (this pinner's uses of the core happen before it is freed; the
/// freer acquires).
void unpin_core(std::uint32_t index) noexcept;

/// A pin on a queue core: while it is held the core's memory is not freed (the queue may still
/// be retired, and its id change, meanwhile: lock the core and compare its id() before acting).
/// Move-only. Destroy it, or reset() it, only after releasing the core's mutex: the last pin
/// on a retired, unreferenced core frees it. Thread safety: as a value; the pinned core as
/// queue_core says.
class core_pin {
 public:
  core_pin() noexcept = default;
  core_pin(const core_pin&) = delete;
  core_pin& operator=(const core_pin&) = delete;
  core_pin(core_pin&& o) noexcept : core_(std::exchange(o.core_, nullptr)), index_(o.index_) {}
  core_pin& operator=(core_pin&& o) noexcept {
    if (this != &o) {
      reset();
      core_ = std::exchange(o.core_, nullptr);
      index_ = o.index_;
    }
    return *this;
  }
  ~core_pin() { reset(); }

  /// Returns: the pinned core, or nullptr.
  [[nodiscard]] queue_core* get() const noexcept { return core_; }
  queue_core* operator->() const noexcept { return core_; }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Effects: releases the pin (see unpin_core), if any.
  void reset() noexcept {
    if (core_ != nullptr) unpin_core(index_);
    core_ = nullptr;
  }

 private:
  friend core_pin pin_core(std::uint32_t index) noexcept;
  core_pin(queue_core* core, std::uint32_t index) noexcept : core_(core), index_(index) {}
  queue_core* core_ = nullptr;
  std::uint32_t index_ = 0;
};

/// Returns: a pin on the core that holds registry index `index` now, or an empty pin if none
/// does (never made, freed, or being freed). Thread safety: any thread, lock-free (a CAS on
/// the index's word; it retries while other pins change it). Memory ordering: acquire (pairs
/// with the release that published the core). Complexity: O(1).
core_pin pin_core(std::uint32_t index) noexcept;

/// Returns: a pin on the core with slot index taken from `id` (see pin_core). The core may be
/// another queue's by now: lock it and compare its id() with `id` before trusting it.
inline core_pin lookup_core(std::uint64_t id) noexcept {
  return pin_core(static_cast<std::uint32_t>(id & core_index_mask));
}

/// Effects: records the execution context of the queue that owns `core` (for
/// queue_executor::query, which may read it after the queue is gone). Thread safety: the
/// queue's creator, before the queue is shared. Memory ordering: relaxed (whoever reads it got
/// the core through the queue or an executor made from it afterwards).
inline void set_context(queue_core* core, boost::asio::execution_context* ctx) noexcept {
  core->reg.context.store(ctx, std::memory_order_relaxed);
}

/// Effects: allocates a core at a free index (the last one given back, or the next never
/// used, making a chunk of the index table the first time one is reached), with the index's
/// next generation, publishes it there (pin_core finds it from now on) and lists it as in use
/// (for_each_core). The core is not live and its mutex is not held.
/// Throws: std::length_error when every index is in use, std::bad_alloc (nothing changed).
/// Thread safety: any thread. Complexity: O(1) amortised (a new chunk: O(chunk size)).
queue_core* allocate_core();

/// Effects: frees a core that was never made live (a creation that failed after
/// allocate_core): takes it off the index and the list in use, and deletes it. Requires: no
/// other thread can have pinned it (its generation was never handed out) and its mutex not
/// held. Thread safety: any thread, not holding the registry mutex.
void free_unused_core(queue_core* core) noexcept;

/// Effects: frees a retired core once no handle (reg.refs) and no worker handler
/// (reg.outstanding_handlers) refers to it: frees the pool and histograms it owned, then the
/// core itself, at once if no pin is held on it, else when the last pin goes (unpin_core).
/// Requires: core->mu held through `lk`; unlocked on return if the core was let go (the caller
/// must not touch the core then, unless it holds a pin). Memory ordering: acquire on refs
/// (pairs with the release decrements, so the last holder's uses happen before the free).
void maybe_recycle(queue_core* core, core_lock& lk) noexcept;

/// Returns: how many cores are constructed now (in use, being freed, or ready in a slab).
/// Thread safety: any thread (takes the registry mutex). Complexity: O(1).
std::size_t registry_cores_in_memory() noexcept;

/// Effects: takes one more reference on a core the caller already holds one on.
/// Thread safety: any thread. Memory ordering: relaxed (a reference is only ever copied from
/// another one, which keeps the core from being recycled meanwhile).
void add_ref(queue_core* core) noexcept;
/// Effects: drops one reference; the last one recycles a retired core (maybe_recycle).
/// Thread safety: any thread not holding the core's mutex. Memory ordering: acq_rel (release
/// publishes this holder's uses; the last one acquires the others').
void drop_ref(queue_core* core) noexcept;

/// Effects: calls fn(core) for every core in use (handed out by allocate_core and not yet
/// freed: live queues, and retired ones some handle or handler still holds), each unlocked and
/// pinned while fn runs. A core may be retired meanwhile: fn must lock it and check reg.live
/// and its id. Allocation: a per-thread snapshot of indexes, grown only when more cores are in
/// use than at any earlier walk on the thread; out of memory, it walks every index ever used
/// instead. Complexity: O(cores in use), not O(cores ever made).
template <class Fn>
void for_each_core(Fn&& fn);
/// The non-template part of for_each_core.
void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg);
template <class Fn>
void for_each_core(Fn&& fn) {
  for_each_core_impl([](queue_core* c, void* a) { (*static_cast<Fn*>(a))(c); }, &fn);
}

}  // namespace wq::detail
