// SPDX-License-Identifier: BSL-1.0
// wq/blocking_region.hpp: `blocking_region`, declared by a work item around a call that may
// block (a file write, a DNS lookup, waiting on a lock or a future), so that the pool it runs
// on starts another worker at once instead of after the CPU-intensive threshold (rule 42).
//
// The kernel knows when a worker sleeps (the scheduler tells it); user space does not, so a
// pool finds a worker blocked only after it has been inside one item for
// `cpu_intensive_threshold` (wq/pool.hpp). A region says so up front, as TBB's and Go's
// runtimes let code do:
//
//   void session::save(wq::id<&session::save_work>) noexcept {
//     wq::blocking_region blocking;      // the pool may start another worker now
//     write_to_disk(snapshot_);          // other items of the pool keep running
//   }
//
// wq's own blocking calls (flush, cancel_*_sync, drain, destroy) declare one themselves.
// Outside a pool worker (a queue on the user's executor or a private pool, any other thread) a
// region does nothing. Regions nest; only the outermost counts.
//
// A region belongs to the work item that created it: do not hold one across a `co_await` (the
// coroutine may resume on another worker) or keep it beyond the item. Misuse is detected and
// repaired: when the item ends with a region still open, the pool closes it (the worker counts
// as running again) and reports errc::blocking_region_misuse; destroying a region on another
// thread, or after that, reports it too and does nothing else.
//
// Cost: a thread-local read; on a pool worker, the pool's lock once on entry and once on exit.
// Thread safety: a region belongs to the thread that created it; construct and destroy it there.
#pragma once

#include <wq/config.hpp>

namespace wq {

class blocking_region {
 public:
  /// Marks the calling pool worker blocked until destruction. No effect on other threads.
  blocking_region() noexcept;
  /// Marks it running again (it may then exceed the pool's concurrency until its item ends).
  ~blocking_region();
  blocking_region(const blocking_region&) = delete;
  blocking_region& operator=(const blocking_region&) = delete;

 private:
  void* thread_;                  // the pool worker's record, or nullptr outside a pool worker
  unsigned long long epoch_ = 0;  // the worker's region epoch when this region was opened
};

}  // namespace wq
