// SPDX-License-Identifier: BSL-1.0
// wq/diagnostics.hpp: how wq reports misuse and faults it detects at run time: the error codes
// (`wq::errc`, category "wq"), the `diagnostic` record, and the process-wide handler that
// receives each one.
//
// The kernel reports misuse with WARN (a backtrace, then carries on) and unusual but legal
// conditions with pr_warn. wq does the same through one handler:
//   - a *misuse* (`is_misuse(code)`: a bug in the caller, e.g. flushing an item from inside
//     itself) is refused or repaired so nothing hangs and no memory is touched after free, then
//     reported. The default handler prints it and, in debug builds of the library (CMake option
//     WQ_ABORT_ON_MISUSE, on for CMAKE_BUILD_TYPE=Debug), aborts: the debug-build assertion;
//   - a *notice* (e.g. max_active clamped, armed items cancelled by destroy) is printed only.
// Calls that can be refused also say so in their result (a bool, a queue_status or an
// error_code), so code can react without a handler; the handler is where a program logs, counts
// or, in tests, asserts misuse.
//
// Thread safety: set_diagnostic_handler may be called from any thread at any time; the handler
// is called on the thread that detected the condition, possibly concurrently with itself, and
// possibly while wq holds internal locks: it must not call back into wq.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <system_error>
#include <type_traits>

namespace wq {

/// What wq detected. Values are stable; semantics.md §5 numbers in brackets.
enum class errc {
  // ---- misuse: refused or repaired, reported, asserted in debug builds ----------------------
  /// flush_work/flush_delayed_work of an item from its own work function [§5.1]. Not waited
  /// for; the call returns false.
  flush_self = 1,
  /// cancel_*_sync/disable_*_sync of an item from its own work function [§5.1]. The pending
  /// instance is cancelled but the running one (the caller) is not waited for.
  cancel_sync_self,
  /// flush(), drain() or destroy() of a queue from one of its own items [§5.2]. Refused.
  wait_on_own_queue,
  /// A blocking wait that needs the calling thread to make progress [§5.3]: flush_work of an
  /// item queued behind the caller on a one-worker queue (returns false), or flush(), drain(),
  /// destroy() or flush_work from a handler of the strand the queue runs on. Refused.
  wait_needs_this_worker,
  /// A work item destroyed while pending [§5.10]. The pending instance is cancelled (the
  /// kernel's debugobjects fix-up) so no worker or timer touches freed memory; a reference the
  /// queue held is abandoned, not released (it refers to the object being destroyed).
  destroyed_while_pending,
  /// A work item destroyed on one thread while its work function runs on another [§5.10]. The
  /// destructor waits for the function to return before the memory can go.
  destroyed_while_running,
  /// A C-style queueing or flush of an item that has no work function [§5.10]. Refused.
  no_work_function,
  /// A disable count that would overflow its 16 bits [§5.11]. Ignored.
  disable_count_overflow,
  /// enable_work on an item that is not disabled [§5.11]. Ignored.
  disable_count_underflow,
  /// set_max_active on an ordered queue [§5.15, rule 38]. Refused.
  set_max_active_on_ordered,
  /// An untyped call on an item that holds an owning reference, which only the typed form can
  /// hand back (mod_delayed_work, enable_and_queue_work, C-style queueing). Refused.
  untyped_on_owning_item,
  /// A typed queueing call (enqueue, enqueue_delayed, mod_delayed_work) given a null or
  /// moved-from pointer. Refused: the call returns queue_status::null_pointer.
  null_pointer,
  /// A blocking wait (flush(), flush_work, flush_delayed_work) that needs items of a paused
  /// queue to run [rule 45], while the queue stayed paused for the wait limit (another thread
  /// may resume it meanwhile). Refused.
  wait_on_paused_queue,
  /// A blocking wait that needs the queue's executor to run its workers while that executor's
  /// execution context is stopped (io_context::stop()). Refused. destroy() (and the
  /// destructor) then drops the queued items unrun, releasing their references, and reports
  /// errc::items_dropped (a notice) instead: stopping the context, then destroying what used
  /// it, is the usual Asio shutdown. destroy() also returns it when the context was shut down
  /// or destroyed earlier with items queued or armed, which were dropped then.
  executor_stopped,
  /// A blocking wait whose queue's workers, posted to its executor, did not start within the
  /// wait limit (wq::set_wait_limit): nobody runs that executor, or only the waiting thread
  /// would (the only thread of an io_context, the thread of a one-thread pool). Refused; on
  /// destroy(), handled as executor_stopped.
  executor_not_running,
  /// Blocking waits between running items that form a cycle (item A flushes or sync-cancels B
  /// while B waits for A, directly or through other items or queues) [§5.4]: the kernel's
  /// lockdep report. The wait that would close the cycle is refused.
  wait_cycle,
  /// A blocking_region that outlived the work item it was created in (held across a
  /// `co_await`, or stored), or was destroyed on another thread (wq/blocking_region.hpp). The
  /// pool closes it when the item ends, so the worker counts as running again; the late
  /// destruction does nothing.
  blocking_region_misuse,
  /// flush_rcu_work (or destroying an rcu_work whose grace period is still outstanding) from
  /// inside an RCU read-side critical section, or from an RCU callback, where waiting for a
  /// grace period cannot finish (wq/rcu_work.hpp) [rule 25]. Refused: the flush returns false.
  wait_in_rcu_read_section,
  /// A typed queueing call (enqueue, enqueue_delayed, the typed mod_delayed_work) on an item
  /// built with a C-style work function (`wq::fn_ops<&f>`): it would replace `f` with the
  /// class's run(), so `f` would never run again. Refused: queue_status::rejected, the pointer
  /// handed back.
  typed_on_c_style_item,

  // ---- notices: printed, never asserted ------------------------------------------------------
  /// max_active outside [1, 2048], or other than 1 on an ordered queue: clamped [rules 37, 39].
  max_active_clamped = 100,
  /// destroy() cancelled armed delayed items that targeted the queue [§5.8]; their references
  /// were released.
  armed_items_cancelled,
  /// A worker handler could not be posted (out of memory); the items stay queued and the next
  /// queueing or finishing item retries.
  worker_post_failed,
  /// A work function has run longer than a watchdog's threshold (wq/watchdog.hpp).
  item_stalled,
  /// A queue with waiting items started none for longer than a watchdog's threshold.
  queue_stalled,
  /// A queue's items were dropped unrun and the references they held released, as Asio
  /// destroys the handlers of a context that is shut down: its executor destroyed the worker
  /// handlers wq had posted without running them, or the queue was destroyed while its
  /// executor was stopped or not run (executor_stopped, executor_not_running).
  items_dropped,
  /// A worker pool reached its max_threads with items waiting for a worker (wq/pool.hpp):
  /// items that wait for each other beyond that bound cannot all run [§5.14]. Once per pool;
  /// also reported by a watchdog while a system queue's items wait behind max_active.
  pool_saturated,
  /// A highpri pool could not raise its workers' priority to nice -20 (needs root or
  /// CAP_SYS_NICE, or RLIMIT_NICE); its workers run at the best nice value allowed [rule 43].
  /// Once per process.
  priority_not_raised,
  /// A CPU or NUMA-node hint (queue_work_on, queue_work_node, wq/kernel.hpp) that names no CPU
  /// or node of this machine. Hints are advisory in user space: the item is queued as without
  /// one [rule 14].
  bad_cpu_hint,
  /// A system-wide queue (system_wq() and friends) was flushed, which the kernel deprecates
  /// (flush_scheduled_work) [rule 27, §5.6]: the flush waits for every unrelated item anyone
  /// queued there. It is done; reported once per process.
  system_queue_flushed,
  /// A wait for an rcu_work's grace period (flush_rcu_work, or destroying the item) has lasted
  /// longer than the wait limit: a reader of the item's liburcu flavour is still inside its
  /// read-side critical section (wq/rcu_work.hpp) [rule 25]. The wait goes on, as the kernel's
  /// RCU stall warning lets it; reported once per wait.
  rcu_grace_period_stalled,
};

/// Whether `e` is a misuse (a bug in the calling code) rather than a notice.
constexpr bool is_misuse(errc e) noexcept { return static_cast<int>(e) < 100; }

/// The error category of wq::errc ("wq").
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// One report: what happened and a sentence saying where (the queue's name) and what wq did.
struct diagnostic {
  errc code;
  /// Null-terminated; valid during the handler call only.
  const char* message;

  [[nodiscard]] bool misuse() const noexcept { return is_misuse(code); }
  [[nodiscard]] std::error_code error() const noexcept { return make_error_code(code); }
};

/// A diagnostic handler. Must not throw, block for long, or call back into wq.
using diagnostic_handler = void (*)(const diagnostic& d) noexcept;

/// Prints "wq: <misuse|notice> <code name>: <message>" to stderr. Every misuse is printed;
/// notices are printed within the notice limit (set_notice_limit), and the ones beyond it are
/// counted and the count printed later ("N more like this suppressed"). Thread safety: any
/// thread, concurrently with itself; takes a lock of its own (a leaf: it calls nothing in wq).
void print_diagnostic(const diagnostic& d) noexcept;

/// How many notices print_diagnostic prints: at most `burst` lines per notice code in any
/// `interval` (a window starts at the first line printed after the previous one ended), as the
/// kernel's pr_warn_ratelimited does (10 per 5 s by default). A server tearing down 10^5
/// sessions, each with a queue holding an armed timeout, reports 10^5 armed_items_cancelled
/// notices: the log gets 10 lines and a count. A burst of 0 prints every notice.
/// The count of suppressed lines is printed before the next line of that code that is printed,
/// when the limit is set again, and at exit (std::exit, or returning from main), so no notice
/// is lost without a trace. A handler installed with set_diagnostic_handler still receives every
/// report: only printing is limited.
struct notice_limit {
  int burst = 10;
  std::chrono::milliseconds interval{5000};
};

/// Sets the notice limit (a negative burst or interval counts as 0) and returns the previous
/// one. First prints the counts of notices suppressed so far, and starts every code's window
/// afresh. Thread safety: any thread, including from a diagnostic handler.
notice_limit set_notice_limit(notice_limit limit) noexcept;

/// Prints like print_diagnostic, then aborts if `d` is a misuse (the debug-build default).
void abort_on_misuse(const diagnostic& d) noexcept;

/// The default wait limit (see set_wait_limit).
inline constexpr std::chrono::milliseconds default_wait_limit{1000};

/// Returns how long a blocking wait (flush, drain, destroy, flush_work, the _sync cancels)
/// waits for a queue's executor to start a worker wq posted to it before it refuses with
/// errc::executor_not_running. Thread safety: any thread.
[[nodiscard]] std::chrono::nanoseconds wait_limit() noexcept;

/// Sets the wait limit (at least 1 ms; default default_wait_limit, 1 s) and returns the previous
/// one. A worker posted to an executor that is being run starts within microseconds; one that
/// has not started for this long means nobody runs the executor (or only the waiting thread
/// would, as from the only thread of an io_context), so the wait could never finish. Raise it if
/// your executors' threads can be busy in one handler for longer than that. Thread safety: any
/// thread; waits in progress use the new value from their next check.
std::chrono::nanoseconds set_wait_limit(std::chrono::nanoseconds limit) noexcept;

/// Installs `handler` (nullptr restores the default) and returns the previous one. The default
/// is abort_on_misuse if the library was built with WQ_ABORT_ON_MISUSE, else print_diagnostic.
diagnostic_handler set_diagnostic_handler(diagnostic_handler handler) noexcept;

}  // namespace wq

/// Lets `ec == wq::errc::flush_self` compare an error_code with the enum.
template <>
struct std::is_error_code_enum<wq::errc> : std::true_type {};
