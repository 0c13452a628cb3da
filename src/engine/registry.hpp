// SPDX-License-Identifier: BSL-1.0
// src/engine/registry.hpp: the core registry (layer 0). Cores are allocated in chunks and never
// freed, so a stale id always names addressable memory; a retired core is recycled once no
// handle refers to it. The registry's own state (chunks, free list, cores in use, next index,
// each core's reg.in_use_pos) is guarded by its mutex, which is taken alone or inside a core
// mutex, never the other way round.
#pragma once

#include <cstdint>
#include <mutex>

#include "queue_core.hpp"

namespace wq::detail {

/// Returns: the core with slot index taken from `id`, or nullptr if no such slot exists.
/// Requires: nothing; the caller must lock the core and compare its id() with `id` before
/// trusting it. Thread safety: any thread, lock-free. Complexity: O(1).
queue_core* lookup_core(std::uint64_t id) noexcept;

/// Effects: records the execution context of the queue that owns `core` (for
/// queue_executor::query, which may read it after the queue is gone). Thread safety: the
/// queue's creator, before the queue is shared. Memory ordering: relaxed (whoever reads it got
/// the core through the queue or an executor made from it afterwards).
inline void set_context(queue_core* core, boost::asio::execution_context* ctx) noexcept {
  core->reg.context.store(ctx, std::memory_order_relaxed);
}

/// Effects: takes a core off the free list, or a fresh one (allocating a chunk of them the
/// first time its index is reached), and lists it as in use (for_each_core). The core is not
/// live and its mutex is not held.
/// Throws: std::length_error when every index is in use, std::bad_alloc.
/// Thread safety: any thread. Complexity: O(1) (a new chunk: O(chunk size)).
queue_core* allocate_core();

/// Effects: puts a core back on the free list (a creation that failed, or a recycled core) and
/// takes it off the list of cores in use. Never allocates: room in both lists is reserved when
/// a core is first made. Thread safety: any thread, not holding the registry mutex.
void push_free(queue_core* core) noexcept;

/// Effects: recycles a retired core once no handle (reg.refs) and no worker handler
/// (reg.outstanding_handlers) refers to it: frees the pool it owned and lists it as free.
/// Requires: core->mu held through `lk`; unlocked on return if the core was recycled (the
/// caller must not touch the core then). Memory ordering: acquire on refs (pairs with the
/// release decrements, so the last holder's uses happen before reuse).
void maybe_recycle(queue_core* core, std::unique_lock<std::mutex>& lk) noexcept;

/// Effects: takes one more reference on a core the caller already holds one on.
/// Thread safety: any thread. Memory ordering: relaxed (a reference is only ever copied from
/// another one, which keeps the core from being recycled meanwhile).
void add_ref(queue_core* core) noexcept;
/// Effects: drops one reference; the last one recycles a retired core (maybe_recycle).
/// Thread safety: any thread not holding the core's mutex. Memory ordering: acq_rel (release
/// publishes this holder's uses; the last one acquires the others').
void drop_ref(queue_core* core) noexcept;

/// Effects: calls fn(core) for every core in use (handed out by allocate_core and not yet
/// given back by push_free: live queues, and retired ones some handle or handler still holds),
/// each unlocked. A core may be retired or reused while fn runs: fn must lock it and check
/// reg.live and its id. Allocation: a per-thread snapshot, grown only when more cores are in
/// use than at any earlier walk on the thread; out of memory, it walks every core ever made
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
