// SPDX-License-Identifier: BSL-1.0
// src/engine/run_records.hpp: what each thread is running (layer 0): its worker context (queue,
// slot, item) and its run record, which other threads read to tell whether an item runs here
// (a destructor's misuse check, cancel_work_sync from the item itself, the wait graph).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <wq/work.hpp>

#include "../wait_graph.hpp"

namespace wq::detail {

struct queue_core;
struct worker_slot;

/// The running thread's worker context, if it is running a work item.
struct worker_context {
  queue_core* core = nullptr;
  worker_slot* slot = nullptr;
  work* current = nullptr;
  bool renamed = false;      // set_worker_desc renamed this thread for the current item
  char saved_name[16] = {};  // the thread's name before that, restored when the item returns
};

/// Effects: names the calling thread `desc` (its first 15 characters: the platform's limit)
/// until restore_thread_name, saving its name the first time. Best effort: nothing happens
/// where the platform refuses. Thread safety: the calling thread only.
void rename_thread(worker_context& ctx, const char* desc) noexcept;
/// Effects: gives the calling thread back the name rename_thread saved, if it renamed it.
/// Thread safety: the calling thread only.
void restore_thread_name(worker_context& ctx) noexcept;

/// Which item a thread's worker is running, published for the destructor's misuse check
/// (check_destroy). One record per thread that ever ran a worker, reused after the thread
/// exits; records are never freed, so a reader may walk the list at any time.
struct run_record {
  std::atomic<const work*> item{nullptr};  // the item whose function runs now, or nullptr
  // Its ops, written before `item`: identity is address plus function (rule 11), so an object
  // built in the memory of one that freed itself while running is not mistaken for it.
  std::atomic<const work_ops*> ops{nullptr};
  // The registry index of the queue whose worker runs `item` (0: none), written before `item`,
  // so a _sync cancel pins and locks only that queue. An index, not a pointer: the reader pins
  // it (the core may be gone by then).
  // Both are stored with release and read with acquire after `item`: when a run ends they go
  // back to the outer run's values before `item` does, so a reader that acquired `item` == w
  // may read the restored ones; the release makes that reader see the run's effects too (a
  // _sync cancel then returns without locking the queue: rule 29's happens-before).
  std::atomic<std::uint32_t> core_index{0};
  // Owned by a live thread. Claimed with an acquire CAS, given up with a release store; a
  // relaxed load only pre-screens before the CAS.
  std::atomic<bool> in_use{false};
  run_record* next = nullptr;  // immutable once published
  wait_target waiting;         // what the thread blocks on; guarded by the graph
                               // mutex (wait_graph.cpp)
};
/// The calling thread's record (claimed on first use), or nullptr while the thread exits or if
/// no memory was left for one.
run_record* this_run_record() noexcept;
/// The calling thread's record if it has claimed one, else nullptr. Never allocates.
run_record* claimed_run_record() noexcept;
/// Makes sure at least `n` records are free to claim (allocating the shortfall), so that
/// threads about to run workers claim one without allocating. Best effort: stops on bad_alloc.
void reserve_run_records(std::size_t n) noexcept;
/// The newest record; follow `next` for the others.
run_record* first_run_record() noexcept;
/// Runs the records cannot show: items run by a thread without a record (out of memory), and
/// outer items while their thread runs another item nested inside them (the record shows the
/// inner one). One word: the number of such runs in the low 32 bits, and in the high 32 bits an
/// epoch that every start and end of one bumps, so a reader that loads the word before and
/// after looking at the records knows whether a hidden run existed, began or ended meanwhile.
/// A hidden run is counted (hidden_run_begins, seq_cst) before it is published or its item's
/// PENDING cleared, and uncounted (hidden_run_ends) after the record shows the outer item again;
/// while the word shows one, or changed, a _sync cancel looks at every queue instead.
std::atomic<std::uint64_t>& hidden_runs() noexcept;
/// What hidden_runs() gains when a hidden run begins (count + 1, epoch + 1) and when one ends
/// (count - 1, epoch + 1: adding 2^32 - 1 to a count of at least 1).
inline constexpr std::uint64_t hidden_run_begins = (std::uint64_t{1} << 32) + 1;
inline constexpr std::uint64_t hidden_run_ends = (std::uint64_t{1} << 32) - 1;
/// The number of hidden runs in a hidden_runs() word.
inline constexpr std::uint32_t hidden_count(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word);
}
/// The calling thread's worker context (all null outside a work item).
worker_context& this_worker() noexcept;
/// The queue whose async_destroy handlers the calling thread is completing, if any: while it
/// does, what they submit to that queue (a handler bound to its executor) is accepted as
/// chained work (rule 17). Set and restored by finish_orphan_locked.
queue_core*& chained_for() noexcept;

}  // namespace wq::detail
