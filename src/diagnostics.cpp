// SPDX-License-Identifier: BSL-1.0
// The "wq" error category and the process-wide diagnostic handler.
#include <wq/diagnostics.hpp>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include <wq/detail/core.hpp>

namespace wq {
namespace {

const char* code_name(errc e) noexcept {
  switch (e) {
    case errc::flush_self: return "flush_self";
    case errc::cancel_sync_self: return "cancel_sync_self";
    case errc::wait_on_own_queue: return "wait_on_own_queue";
    case errc::wait_needs_this_worker: return "wait_needs_this_worker";
    case errc::destroyed_while_pending: return "destroyed_while_pending";
    case errc::destroyed_while_running: return "destroyed_while_running";
    case errc::no_work_function: return "no_work_function";
    case errc::disable_count_overflow: return "disable_count_overflow";
    case errc::disable_count_underflow: return "disable_count_underflow";
    case errc::set_max_active_on_ordered: return "set_max_active_on_ordered";
    case errc::untyped_on_owning_item: return "untyped_on_owning_item";
    case errc::null_pointer: return "null_pointer";
    case errc::wait_on_paused_queue: return "wait_on_paused_queue";
    case errc::executor_stopped: return "executor_stopped";
    case errc::executor_not_running: return "executor_not_running";
    case errc::wait_cycle: return "wait_cycle";
    case errc::blocking_region_misuse: return "blocking_region_misuse";
    case errc::wait_in_rcu_read_section: return "wait_in_rcu_read_section";
    case errc::typed_on_c_style_item: return "typed_on_c_style_item";
    case errc::max_active_clamped: return "max_active_clamped";
    case errc::armed_items_cancelled: return "armed_items_cancelled";
    case errc::worker_post_failed: return "worker_post_failed";
    case errc::item_stalled: return "item_stalled";
    case errc::queue_stalled: return "queue_stalled";
    case errc::items_dropped: return "items_dropped";
    case errc::pool_saturated: return "pool_saturated";
    case errc::priority_not_raised: return "priority_not_raised";
    case errc::bad_cpu_hint: return "bad_cpu_hint";
    case errc::system_queue_flushed: return "system_queue_flushed";
    case errc::rcu_grace_period_stalled: return "rcu_grace_period_stalled";
  }
  return "unknown";
}

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "wq"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::flush_self: return "work item flushed from its own work function";
      case errc::cancel_sync_self:
        return "work item sync-cancelled or sync-disabled from its own work function";
      case errc::wait_on_own_queue: return "queue flushed, drained or destroyed from its own item";
      case errc::wait_needs_this_worker:
        return "blocking wait that needs the calling worker to make progress";
      case errc::destroyed_while_pending: return "work item destroyed while pending";
      case errc::destroyed_while_running:
        return "work item destroyed while its work function runs on another thread";
      case errc::no_work_function: return "work item has no work function";
      case errc::disable_count_overflow: return "work disable count overflowed";
      case errc::disable_count_underflow: return "work disable count underflowed";
      case errc::set_max_active_on_ordered: return "set_max_active on an ordered queue";
      case errc::untyped_on_owning_item: return "untyped call on a work item that owns a reference";
      case errc::null_pointer: return "null or moved-from pointer queued";
      case errc::wait_on_paused_queue: return "blocking wait on a paused queue";
      case errc::executor_stopped:
        return "the queue's executor is stopped: a blocking wait was refused, or items were "
               "dropped unrun (by destroy(), or when its execution context shut down)";
      case errc::executor_not_running:
        return "the queue's executor does not run its workers: a blocking wait was refused, or "
               "destroy() dropped the queued items unrun";
      case errc::wait_cycle: return "blocking waits between work items form a cycle";
      case errc::blocking_region_misuse:
        return "blocking_region outlived its work item or changed threads";
      case errc::wait_in_rcu_read_section:
        return "wait for an RCU grace period from a read-side section or RCU callback";
      case errc::typed_on_c_style_item:
        return "typed queueing of a work item built with a C-style work function";
      case errc::max_active_clamped: return "max_active out of range, clamped";
      case errc::armed_items_cancelled: return "queue destroyed with armed delayed items";
      case errc::worker_post_failed: return "could not post a worker (out of memory)";
      case errc::item_stalled: return "work function running longer than the watchdog threshold";
      case errc::queue_stalled: return "queue made no progress for the watchdog threshold";
      case errc::items_dropped:
        return "queue's items dropped unrun: its executor does not run them";
      case errc::pool_saturated: return "worker pool at its thread limit with items waiting";
      case errc::priority_not_raised: return "highpri workers could not be given a higher priority";
      case errc::bad_cpu_hint: return "CPU or NUMA node hint names none of this machine's";
      case errc::system_queue_flushed: return "a system-wide queue was flushed (deprecated)";
      case errc::rcu_grace_period_stalled:
        return "an RCU grace period lasted longer than the wait limit";
    }
    return "unknown wq error";
  }
};

#if defined(WQ_ABORT_ON_MISUSE) && WQ_ABORT_ON_MISUSE
constexpr diagnostic_handler default_handler = &abort_on_misuse;
#else
constexpr diagnostic_handler default_handler = &print_diagnostic;
#endif

std::atomic<diagnostic_handler> g_handler{default_handler};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category_impl category;
  return category;
}

namespace {

// The notice limit of print_diagnostic (set_notice_limit). State and lock: everything in
// notice_printer is guarded by its `mu`, a leaf lock (nothing is called under it but stdio).
// The printer is allocated once and never destroyed: notices are reported from static
// destructors too (system queues shutting down at exit), after a static object would be gone.
constexpr int first_notice = static_cast<int>(errc::max_active_clamped);
constexpr int nr_notice_codes = 32;  // notice codes are first_notice .. first_notice + 31
static_assert(static_cast<int>(errc::rcu_grace_period_stalled) < first_notice + nr_notice_codes,
              "a notice code beyond the notice printer's table");

struct notice_window {
  std::chrono::steady_clock::time_point start{};  // when its first line was printed
  int printed = 0;                                // lines printed in this window
  std::uint64_t suppressed = 0;                   // lines not printed since the last count
};

struct notice_printer {
  std::mutex mu;
  notice_limit limit;
  notice_window windows[nr_notice_codes];
  bool exit_hook = false;  // print_suppressed_at_exit is registered
  bool exiting = false;    // exit has begun: print everything from now on
};

notice_printer& printer() noexcept {
  // Safety: constructed in static storage by the first report (a function-local static, so
  // once even under concurrent first reports) and intentionally never destroyed (see above).
  // Placement new allocates nothing: reports come from out-of-memory paths too
  // (worker_post_failed).
  alignas(notice_printer) static unsigned char storage[sizeof(notice_printer)];
  static notice_printer* const p = ::new (static_cast<void*>(storage)) notice_printer;
  return *p;
}

// Prints how many lines of code index `i` were suppressed, if any, and zeroes the count.
// Requires printer().mu held.
void print_suppressed_locked(notice_printer& p, int i) noexcept {
  notice_window& w = p.windows[i];
  if (w.suppressed == 0) return;
  // Safety (static_cast): first_notice + i is in errc's range of notices: a notice code, or a
  // value a caller of print_diagnostic made up, which code_name names "unknown".
  std::fprintf(stderr,
               "wq: notice %s: %llu more like this suppressed (at most %d printed per %lld ms; "
               "wq::set_notice_limit)\n",
               code_name(static_cast<errc>(first_notice + i)),
               static_cast<unsigned long long>(w.suppressed), p.limit.burst,
               static_cast<long long>(p.limit.interval.count()));
  w.suppressed = 0;
}

// Registered with std::atexit by the first suppressed notice: prints every count left, and
// lets every notice reported during the rest of the exit through.
void print_suppressed_at_exit() noexcept {
  notice_printer& p = printer();
  const std::lock_guard<std::mutex> lk(p.mu);
  p.exiting = true;
  for (int i = 0; i < nr_notice_codes; ++i) print_suppressed_locked(p, i);
}

// Returns: whether the notice of code index `i` is to be printed now; counts it otherwise.
// Prints the previous window's count when a new window starts. Requires printer().mu held.
bool admit_notice_locked(notice_printer& p, int i) noexcept {
  if (p.limit.burst <= 0 || p.exiting) return true;
  notice_window& w = p.windows[i];
  const auto now = std::chrono::steady_clock::now();
  if (w.printed == 0 || now - w.start >= p.limit.interval) {
    print_suppressed_locked(p, i);
    w.start = now;
    w.printed = 0;
  }
  if (w.printed < p.limit.burst) {
    ++w.printed;
    return true;
  }
  ++w.suppressed;
  if (!p.exit_hook) p.exit_hook = std::atexit(print_suppressed_at_exit) == 0;
  return false;
}

}  // namespace

void print_diagnostic(const diagnostic& d) noexcept {
  // Safety (static_cast): errc's underlying type is int.
  const int i = static_cast<int>(d.code) - first_notice;
  if (d.misuse() || i < 0 || i >= nr_notice_codes) {
    std::fprintf(stderr, "wq: %s %s: %s\n", d.misuse() ? "misuse" : "notice", code_name(d.code),
                 d.message);
    return;
  }
  notice_printer& p = printer();
  const std::lock_guard<std::mutex> lk(p.mu);
  // Printed under the lock, so that a count is never printed after a line it follows.
  if (admit_notice_locked(p, i))
    std::fprintf(stderr, "wq: notice %s: %s\n", code_name(d.code), d.message);
}

notice_limit set_notice_limit(notice_limit limit) noexcept {
  if (limit.burst < 0) limit.burst = 0;
  if (limit.interval.count() < 0) limit.interval = std::chrono::milliseconds(0);
  notice_printer& p = printer();
  const std::lock_guard<std::mutex> lk(p.mu);
  for (int i = 0; i < nr_notice_codes; ++i) {
    print_suppressed_locked(p, i);
    p.windows[i] = {};
  }
  const notice_limit old = p.limit;
  p.limit = limit;
  return old;
}

void abort_on_misuse(const diagnostic& d) noexcept {
  print_diagnostic(d);
  if (d.misuse()) std::abort();
}

diagnostic_handler set_diagnostic_handler(diagnostic_handler handler) noexcept {
  // Safety (acq_rel): the release publishes the new handler to report(); the acquire makes the
  // previous one safe to call by the caller that gets it back.
  return g_handler.exchange(handler != nullptr ? handler : default_handler,
                            std::memory_order_acq_rel);
}

namespace detail {

void report(errc code, const char* fmt, ...) noexcept {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  // A message longer than the buffer (a long queue or item name) is formatted whole into a
  // block of its own; out of memory, the cut one is reported rather than nothing.
  std::unique_ptr<char[]> whole;
  if (n >= static_cast<int>(sizeof buf)) {
    whole.reset(new (std::nothrow) char[static_cast<std::size_t>(n) + 1]);
    if (whole) std::vsnprintf(whole.get(), static_cast<std::size_t>(n) + 1, fmt, again);
  }
  va_end(again);
  // Safety (acquire): pairs with the release in set_diagnostic_handler.
  g_handler.load(std::memory_order_acquire)(diagnostic{code, whole ? whole.get() : buf});
}

}  // namespace detail
namespace {
// Nanoseconds; read relaxed: a plain setting, no other data is published through it.
std::atomic<std::int64_t> g_wait_limit_ns{
    std::chrono::duration_cast<std::chrono::nanoseconds>(default_wait_limit).count()};
}  // namespace

std::chrono::nanoseconds wait_limit() noexcept {
  return std::chrono::nanoseconds(g_wait_limit_ns.load(std::memory_order_relaxed));
}

std::chrono::nanoseconds set_wait_limit(std::chrono::nanoseconds limit) noexcept {
  if (limit < std::chrono::milliseconds(1)) limit = std::chrono::milliseconds(1);
  return std::chrono::nanoseconds(
      g_wait_limit_ns.exchange(limit.count(), std::memory_order_relaxed));
}

}  // namespace wq
