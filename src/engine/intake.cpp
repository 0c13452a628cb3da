// SPDX-License-Identifier: BSL-1.0
// The intake: see intake.hpp.
#include "intake.hpp"

#include "../trace.hpp"

namespace wq::detail {

namespace {

void set_intake_next(work& w, work* next) noexcept {
  work_list::node_traits::set_next(
      work_list::value_traits::to_node_ptr(w),
      next == nullptr ? nullptr : work_list::value_traits::to_node_ptr(*next));
}

// Reverses a chain taken off the intake (newest first) into queueing order.
work* oldest_first(std::uintptr_t chain) noexcept {
  // Safety: the chain holds only addresses of items pushed by try_push, each still owned by
  // this queue (PENDING|INTAKE): nobody else unlinks or frees an item on the intake.
  work* newest = reinterpret_cast<work*>(chain);
  work* oldest = nullptr;
  while (newest != nullptr) {
    work* next = intake_next(*newest);
    set_intake_next(*newest, oldest);
    oldest = newest;
    newest = next;
  }
  return oldest;
}

}  // namespace

// The chain is linked through the items' list hooks, unused while on the intake.
work* intake_next(work& w) noexcept {
  const auto n = work_list::node_traits::get_next(work_list::value_traits::to_node_ptr(w));
  return n == nullptr ? nullptr : work_list::value_traits::to_value_ptr(n);
}

push_result try_push(queue_core* core, std::uint64_t id, work& w, const location* where) noexcept {
  const std::uintptr_t tag = intake_tag(static_cast<std::uint32_t>(id >> core_index_bits));
  // Safety: an item's address is only compared and stored here; it is read back as a work* by
  // insert_chain. An address that does not fit under the tag takes the locked path.
  const auto addr = reinterpret_cast<std::uintptr_t>(&w);
  if ((addr & ~intake_ptr_mask) != 0) return push_result::not_pushed;
  std::uintptr_t h = core->in.word.load(std::memory_order_relaxed);
  if ((h & ~intake_ptr_mask) != tag || (h & intake_ptr_mask) == intake_closed)
    return push_result::not_pushed;
  // Idle workers: the locked path starts one (and avoids a second round trip here).
  if (!core->in.saturated.load(std::memory_order_relaxed)) return push_result::not_pushed;
  auto& st = work_access::state(w);
  // We own PENDING, so nobody else changes the queue id; INTAKE tells a canceller or flusher
  // which queue's mutex to take to find the item (they take the intake, then see it QUEUED).
  // Safety (relaxed): the push below publishes it.
  state_t s = st.load(std::memory_order_relaxed);
  while (
      !st.compare_exchange_weak(s, with_queue_id(s, id) | st_intake, std::memory_order_relaxed)) {
  }
  // Before the push: once pushed, the item may run and be freed at any moment.
  if (observer* o = core->obs.load(std::memory_order_relaxed))
    o->on_queued(core->name, w, false, where != nullptr ? *where : location{});
  WQ_TRACE_QUEUE_WORK(&w, trace_name(w), core->name.c_str(), id);
  for (;;) {
    if ((h & ~intake_ptr_mask) != tag || (h & intake_ptr_mask) == intake_closed) {
      // Closed meanwhile (a drain or destroy began): the locked path decides, without
      // reporting the queueing to the observer a second time.
      st.fetch_and(~st_intake, std::memory_order_relaxed);
      return push_result::closed;
    }
    set_intake_next(
        w, (h & intake_ptr_mask) == 0 ? nullptr : reinterpret_cast<work*>(h & intake_ptr_mask));
    // Safety (seq_cst): releases the item (state, link) to the taker; and, with the load of
    // `saturated` below, forms a store-load pair against a worker's going idle (take_next):
    // either the worker sees this item, or this thread sees the worker gone and starts one.
    if (core->in.word.compare_exchange_weak(h, tag | addr, std::memory_order_seq_cst,
                                            std::memory_order_relaxed))
      break;
  }
  // The second half of the store-load pair (see the CAS above).
  return core->in.saturated.load(std::memory_order_seq_cst) ? push_result::pushed
                                                            : push_result::pushed_needs_worker;
}

work* take_intake(queue_core* core) noexcept {
  std::uintptr_t h = core->in.word.load(std::memory_order_relaxed);
  do {
    if ((h & intake_ptr_mask) <= intake_closed) return nullptr;  // empty or closed
    // Safety (acquire): pairs with the pushes' release, publishing each item's state and link.
  } while (!core->in.word.compare_exchange_weak(h, h & ~intake_ptr_mask, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  return oldest_first(h & intake_ptr_mask);
}

work* close_intake(queue_core* core) noexcept {
  // Safety (acquire): as take_intake. After this no producer can push (they check for the
  // closed mark in the same CAS that pushes).
  const std::uintptr_t h =
      core->in.word.exchange(intake_tag(core->reg.gen) | intake_closed, std::memory_order_acquire);
  return (h & intake_ptr_mask) > intake_closed ? oldest_first(h & intake_ptr_mask) : nullptr;
}

void reopen_intake(queue_core* core) noexcept {
  // Safety (release): as retag_intake.
  core->in.word.store(intake_tag(core->reg.gen), std::memory_order_release);
}

void retag_intake(queue_core* core, bool closed) noexcept {
  // Safety (release): the generation tag is what producers compare their queue id with; the
  // mutex publishes the rest of the core to them through the workqueue.
  core->in.word.store(intake_tag(core->reg.gen) | (closed ? intake_closed : 0),
                      std::memory_order_release);
}

}  // namespace wq::detail
