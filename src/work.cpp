// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/work.hpp: an item's destruction check (destroyed while pending or
// while running elsewhere) and the trampolines' PENDING steps.
#include <wq/work.hpp>

#include <chrono>

#include <wq/detail/diagnostics.hpp>
#include <wq/detail/grab.hpp>
#include <wq/diagnostics.hpp>
#include <wq/impl/claim.hpp>

#include "engine/backoff.hpp"
#include "engine/run_records.hpp"

namespace wq::detail {

namespace {
// How long a destructor gives a worker to publish that the function it saw running has
// returned (a function may hand its item to another thread just before returning) before it
// calls the destruction misuse.
constexpr auto destroy_grace = std::chrono::seconds(1);

void wait_not_running_elsewhere(work& w) noexcept {
  run_record* mine = claimed_run_record();
  const work_ops* ops = work_access::ops(w).load(std::memory_order_relaxed);
  for (run_record* r = first_run_record(); r != nullptr; r = r->next) {
    // Safety (acquire): pairs with the worker's release stores around the function call.
    if (r == mine || r->item.load(std::memory_order_acquire) != &w) continue;
    // Safety (acquire): another object (rule 11), or this run just ended and the record shows
    // the thread's outer run again: either way, stored with release after the run's effects.
    if (r->ops.load(std::memory_order_acquire) != ops) continue;
    const auto give_up = std::chrono::steady_clock::now() + destroy_grace;
    unsigned spins = 0;
    while (r->item.load(std::memory_order_acquire) == &w &&
           std::chrono::steady_clock::now() < give_up)
      backoff(spins++);
    if (r->item.load(std::memory_order_acquire) != &w) continue;
    report(errc::destroyed_while_running,
           "work item %p destroyed while its function runs on another thread: waiting for it "
           "to return",
           static_cast<const void*>(&w));
    while (r->item.load(std::memory_order_acquire) == &w) backoff(spins++);
  }
}
}  // namespace

void check_destroy(work& w) noexcept {
  // Destroyed by its own running function (rule 4: it may free itself): this thread's record
  // must stop naming the address, or an object built there later would be mistaken for a
  // running one. (The worker restores the outer item's record when the function returns.)
  if (run_record* mine = claimed_run_record();
      mine != nullptr && mine->item.load(std::memory_order_relaxed) == &w) {
    // Safety (release): as the worker's own stores around the call.
    mine->item.store(nullptr, std::memory_order_release);
  }
  // Safety (acquire): a pending bit set by another thread's queueing is seen with its links.
  if ((work_access::state(w).load(std::memory_order_acquire) & st_pending) != 0) {
    report(errc::destroyed_while_pending,
           "work item %p destroyed while pending: the pending instance is cancelled and any "
           "reference the queue held is abandoned",
           static_cast<const void*>(&w));
    // The kernel's debugobjects fix-up: take the instance off its list or timer. A reference
    // the queue held points at the object being destroyed, so it is neither released nor
    // handed back.
    (void)grab_pending(w);
    unclaim_pending(w);
  }
  wait_not_running_elsewhere(w);
}

void clear_pending(work* item) noexcept { unclaim_pending(*item); }

void begin_run(work* item) noexcept { begin_run_inline(*item); }

}  // namespace wq::detail

namespace wq {

bool work::is_running() const noexcept {
  const work_ops* ops = ops_.load(std::memory_order_relaxed);
  for (const detail::run_record* r = detail::first_run_record(); r != nullptr; r = r->next) {
    // Safety (relaxed): an advisory answer (rule 5); identity is address plus function (rule 11).
    if (r->item.load(std::memory_order_relaxed) == this &&
        r->ops.load(std::memory_order_relaxed) == ops)
      return true;
  }
  return false;
}

}  // namespace wq
