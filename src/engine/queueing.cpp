// SPDX-License-Identifier: BSL-1.0
// From the intake to the worklist: see queueing.hpp.
#include "queueing.hpp"

#include "intake.hpp"
#include "worklist.hpp"

namespace wq::detail {

namespace {

// Links a chain from take_intake/close_intake, counting each item as queued.
void link_chain(queue_core* core, work* oldest) noexcept {
  while (oldest != nullptr) {
    work* next = intake_next(*oldest);  // read first: linking reuses the hook
    ++core->stats.queued;
    link_on_worklist(core, *oldest);
    oldest = next;
  }
}

}  // namespace

bool take_intake_locked(queue_core* core) noexcept {
  work* chain = take_intake(core);
  if (chain == nullptr) return false;
  link_chain(core, chain);
  return true;
}

void close_intake_locked(queue_core* core) noexcept { link_chain(core, close_intake(core)); }

void open_intake_locked(queue_core* core) noexcept {
  if (!core->reg.live || core->lc.dying || core->lc.draining > 0) return;
  reopen_intake(core);
}

void link_locked(queue_core* core, work& w) noexcept {
  take_intake_locked(core);  // older items first: FIFO per producer thread (rules 37, 39)
  link_on_worklist(core, w);
}

}  // namespace wq::detail
