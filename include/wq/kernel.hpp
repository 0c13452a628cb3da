// SPDX-License-Identifier: BSL-1.0
// wq/kernel.hpp: the kernel-named compatibility layer, for code ported from (or written like)
// the Linux kernel's workqueue API.
//
// wq has two APIs over one engine. The main API is idiomatic C++: queues are objects
// (`wq::workqueue`, `wq::ordered_workqueue`, created with `wq::queue_options`), queueing is a
// member returning `wq::queue_status` (`q.queue(item)`, `q.enqueue<&T::m>(pointer)`), and waits
// have Asio forms (wq/async.hpp). Where the kernel's name already is the concept's one name it
// is the main API's name too, and lives with its concept: cancel_work[_sync], disable_work[_sync],
// enable_work, enable_and_queue_work, mod_delayed_work (wq/cancel.hpp), flush_work,
// flush_delayed_work (wq/flush.hpp), current_work (wq/workqueue.hpp).
//
// This header gathers the rest: the kernel's spellings of what the main API spells otherwise.
// Each is a one-line forwarder with the kernel's signature shape and return type (bool where
// the kernel returns bool), documented by the main-API call it forwards to:
//
//   kernel                                   main API
//   alloc_workqueue(name, f, max)       make_unique<workqueue>(name, queue_options{f, max})
//   alloc_ordered_workqueue(name, f)    make_unique<ordered_workqueue>(name, queue_options{f})
//   destroy_workqueue(q)                     q.destroy() (and, for a unique_ptr, reset)
//   flush_workqueue(q), drain_workqueue(q)   q.flush(), q.drain()
//   queue_work(q, w)                         q.queue(w) == queue_status::queued
//   queue_delayed_work(q, d, delay)          q.queue_delayed(d, delay) == queue_status::queued
//   schedule_work(w)                         system_wq().queue(w) == queue_status::queued
//   schedule_delayed_work(d, delay)          system_wq().queue_delayed(d, delay) == queued
//   work_pending(w), delayed_work_pending(d) w.is_pending()
//   cancel_delayed_work[_sync](d)            cancel_work[_sync](d)
//   disable_delayed_work[_sync](d)           disable_work[_sync](d)
//   enable_delayed_work(d)                   enable_work(d)
//   work_busy(w)                             w.is_pending(), w.is_running()
//   queue_work_on(cpu, q, w), _node(n, ...)  q.queue(w): the hint is checked, then ignored
//   workqueue_congested(cpu, q)              q.congested()
//   flush_scheduled_work()                   system_wq().flush() (a notice, once)
//
// CPU and NUMA-node hints: user space has no per-CPU pools to honour them, so every `_on` and
// `_node` form queues exactly as its plain form does and returns what it returns (rule 14); a
// hint that names no CPU (node) of this machine, other than WORK_CPU_UNBOUND (NUMA_NO_NODE), is
// reported (errc::bad_cpu_hint, a notice) as the kernel's "caller must keep the CPU online"
// contract would be broken. The kernel also WARNs on queue_work_node for a bound queue; wq does
// not, since no queue here is bound to a CPU.
//
// <wq/wq.hpp> includes this header.
//
// Thread safety: as the functions they forward to.
#pragma once

#include <wq/config.hpp>

#include <concepts>
#include <memory>
#include <string_view>
#include <system_error>

#include <wq/cancel.hpp>
#include <wq/delayed_work.hpp>
#include <wq/detail/kernel.hpp>
#include <wq/jiffies.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/queue_options.hpp>
#include <wq/queue_status.hpp>
#include <wq/system_queues.hpp>
#include <wq/work.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// The "no CPU" value of the `_on` forms (the kernel's WORK_CPU_UNBOUND).
inline constexpr int WORK_CPU_UNBOUND = detail::work_cpu_unbound;
/// The "no node" value of queue_work_node (the kernel's NUMA_NO_NODE).
inline constexpr int NUMA_NO_NODE = -1;
/// work_busy() bits (the kernel's values).
inline constexpr unsigned int WORK_BUSY_PENDING = 1u << 0;
inline constexpr unsigned int WORK_BUSY_RUNNING = 1u << 1;

// ---- queues (rules 36, 39, 26, 49, 50) -----------------------------------------------------

/// Returns a new queue (kernel `alloc_workqueue`) on the shared pool its flags choose:
/// `std::make_unique<workqueue>(name, queue_options{flags, max_active})`.
/// Throws: std::bad_alloc.
[[nodiscard]] inline std::unique_ptr<workqueue> alloc_workqueue(
    std::string_view name, queue_flags flags = queue_flags::none, int max_active = 0) {
  return std::make_unique<workqueue>(name, queue_options{flags, max_active});
}

/// Returns a new ordered queue (kernel `alloc_ordered_workqueue`, rule 39) on the shared
/// unbound pool: `std::make_unique<ordered_workqueue>(name, queue_options{flags})`.
/// Throws: std::bad_alloc.
[[nodiscard]] inline std::unique_ptr<ordered_workqueue> alloc_ordered_workqueue(
    std::string_view name, queue_flags flags = queue_flags::none) {
  return std::make_unique<ordered_workqueue>(name, queue_options{flags});
}

/// Returns a new queue whose name is printf-formatted from `fmt` (kernel `alloc_workqueue(fmt,
/// flags, max_active, ...)`, rule 36), on the shared pool its flags choose. Unlike the
/// kernel's, the name is kept whole (the kernel truncates it to 31 characters with a warning).
/// Throws: std::bad_alloc (the kernel returns NULL).
[[nodiscard]] std::unique_ptr<workqueue> alloc_workqueue(const char* fmt, queue_flags flags,
                                                         int max_active, ...)
    __attribute__((format(printf, 1, 4)));

/// Returns a new ordered queue whose name is printf-formatted from `fmt` (kernel
/// `alloc_ordered_workqueue(fmt, flags, ...)`, rule 39). Throws: std::bad_alloc.
[[nodiscard]] std::unique_ptr<ordered_workqueue> alloc_ordered_workqueue(const char* fmt,
                                                                         queue_flags flags, ...)
    __attribute__((format(printf, 1, 3)));

/// Returns whether items wait beyond `queue`'s max_active (kernel `workqueue_congested`,
/// rule 51): `queue.congested()`. `cpu` is a hint (checked, see the file comment).
[[nodiscard]] inline bool workqueue_congested(int cpu, workqueue& queue) noexcept {
  detail::check_cpu_hint(cpu, "workqueue_congested");
  return queue.congested();
}

/// Destroys `queue` (kernel `destroy_workqueue`, rule 50): `queue.destroy()`.
/// Returns: as workqueue::destroy (the kernel's returns nothing; a refusal is also reported).
inline std::error_code destroy_workqueue(workqueue& queue) { return queue.destroy(); }

/// Destroys the queue `queue` owns and frees it (kernel `destroy_workqueue` on the pointer
/// alloc_workqueue returned): `queue->destroy()`, then `queue.reset()`. A null `queue` is a
/// no-op. Returns: as workqueue::destroy.
template <std::derived_from<workqueue> Queue>
std::error_code destroy_workqueue(std::unique_ptr<Queue>& queue) {
  if (!queue) return {};
  std::error_code ec = queue->destroy();
  queue.reset();
  return ec;
}

/// Waits for the items queued on `queue` before the call (kernel `flush_workqueue`, rule 26):
/// `queue.flush()`.
inline std::error_code flush_workqueue(workqueue& queue) { return queue.flush(); }

/// Waits until `queue` is empty, refusing outside queueing meanwhile (kernel `drain_workqueue`,
/// rule 49): `queue.drain()`.
inline std::error_code drain_workqueue(workqueue& queue) { return queue.drain(); }

// ---- queueing (rules 1, 14, 15, 18, 48) ----------------------------------------------------

/// Queues `item` on `queue` (kernel `queue_work`, rules 1 and 14).
/// Returns: true iff `queue.queue(item)` returned queued (false: already pending, disabled,
/// unbound or refused; see workqueue::queue). On a shared_work this does not compile (its
/// shared_ptr is handed over only by `queue.enqueue<&T::m>(pointer)`).
template <std::derived_from<work> Item>
bool queue_work(workqueue& queue, Item& item,
                const location& where = location::current()) noexcept {
  return queue.queue(item, where) == queue_status::queued;
}

/// Arms `item` to be queued on `queue` after `delay`, jiffies or std::chrono (kernel
/// `queue_delayed_work`, rules 15 and 18).
/// Returns: true iff `queue.queue_delayed(item, delay)` returned queued (false: already
/// pending, its timer left alone; disabled; unbound; refused).
template <std::derived_from<delayed_work> Item, class Delay>
requires wq::delay<Delay>
bool queue_delayed_work(workqueue& queue, Item& item, Delay delay,
                        const location& where = location::current()) noexcept {
  return queue.queue_delayed(item, delay, where) == queue_status::queued;
}

/// Queues `item` on the system queue (kernel `schedule_work`, rule 48): queue_work(system_wq(),
/// item). Throws: as system_wq() on its first use (the queue cannot be created).
template <std::derived_from<work> Item>
bool schedule_work(Item& item, const location& where = location::current()) {
  return queue_work(system_wq(), item, where);
}

/// Arms `item` for the system queue (kernel `schedule_delayed_work`, rule 48):
/// queue_delayed_work(system_wq(), item, delay). Throws: as system_wq() on its first use.
template <std::derived_from<delayed_work> Item, class Delay>
requires wq::delay<Delay>
bool schedule_delayed_work(Item& item, Delay delay, const location& where = location::current()) {
  return queue_delayed_work(system_wq(), item, delay, where);
}

/// Flushes the system queue (kernel `flush_scheduled_work`, deprecated there, rule 27):
/// `system_wq().flush()`, which reports errc::system_queue_flushed once per process.
inline std::error_code flush_scheduled_work() { return system_wq().flush(); }

// ---- CPU and NUMA hints (rule 14): checked, then the plain form -----------------------------

/// Kernel `queue_work_on(cpu, wq, w)`: queue_work(queue, item); `cpu` is a hint.
template <std::derived_from<work> Item>
bool queue_work_on(int cpu, workqueue& queue, Item& item,
                   const location& where = location::current()) noexcept {
  detail::check_cpu_hint(cpu, "queue_work_on");
  return queue_work(queue, item, where);
}

/// Kernel `queue_work_node(node, wq, w)`: queue_work(queue, item); `node` is a hint.
template <std::derived_from<work> Item>
bool queue_work_node(int node, workqueue& queue, Item& item,
                     const location& where = location::current()) noexcept {
  detail::check_node_hint(node, "queue_work_node");
  return queue_work(queue, item, where);
}

/// Kernel `queue_delayed_work_on(cpu, wq, dw, delay)`: queue_delayed_work; `cpu` is a hint.
template <std::derived_from<delayed_work> Item, class Delay>
requires wq::delay<Delay>
bool queue_delayed_work_on(int cpu, workqueue& queue, Item& item, Delay delay,
                           const location& where = location::current()) noexcept {
  detail::check_cpu_hint(cpu, "queue_delayed_work_on");
  return queue_delayed_work(queue, item, delay, where);
}

/// Kernel `mod_delayed_work_on(cpu, wq, dw, delay)`: mod_delayed_work; `cpu` is a hint.
template <std::derived_from<delayed_work> Item, class Delay>
requires wq::delay<Delay>
bool mod_delayed_work_on(int cpu, workqueue& queue, Item& item, Delay delay) noexcept {
  detail::check_cpu_hint(cpu, "mod_delayed_work_on");
  return mod_delayed_work(queue, item, delay);
}

/// Kernel `schedule_work_on(cpu, w)`: schedule_work(item); `cpu` is a hint.
template <std::derived_from<work> Item>
bool schedule_work_on(int cpu, Item& item, const location& where = location::current()) {
  detail::check_cpu_hint(cpu, "schedule_work_on");
  return schedule_work(item, where);
}

/// Kernel `schedule_delayed_work_on(cpu, dw, delay)`: schedule_delayed_work; `cpu` is a hint.
template <std::derived_from<delayed_work> Item, class Delay>
requires wq::delay<Delay>
bool schedule_delayed_work_on(int cpu, Item& item, Delay delay,
                              const location& where = location::current()) {
  detail::check_cpu_hint(cpu, "schedule_delayed_work_on");
  return schedule_delayed_work(item, delay, where);
}

// ---- state (rule 5) ------------------------------------------------------------------------

/// Returns whether `item` is pending (kernel `work_pending`): `item.is_pending()`. Advisory
/// (rule 5).
[[nodiscard]] inline bool work_pending(const work& item) noexcept { return item.is_pending(); }

/// Returns whether `item` is pending, armed or queued (kernel `delayed_work_pending`):
/// `item.is_pending()`. Advisory (rule 5).
[[nodiscard]] inline bool delayed_work_pending(const delayed_work& item) noexcept {
  return item.is_pending();
}

/// Returns WORK_BUSY_PENDING if `item` is pending and WORK_BUSY_RUNNING if its function runs
/// now on any queue (kernel `work_busy`, rule 5): `item.is_pending()`, `item.is_running()`.
/// Advisory, as in the kernel.
[[nodiscard]] inline unsigned int work_busy(const work& item) noexcept {
  return (item.is_pending() ? WORK_BUSY_PENDING : 0u) |
         (item.is_running() ? WORK_BUSY_RUNNING : 0u);
}

// ---- the _delayed_ spellings (rules 31-34) -------------------------------------------------

/// Kernel `cancel_delayed_work` (rule 31): cancel_work(item).
inline bool cancel_delayed_work(delayed_work& item) noexcept { return cancel_work(item); }
/// Kernel `cancel_delayed_work_sync` (rule 32): cancel_work_sync(item).
inline bool cancel_delayed_work_sync(delayed_work& item) noexcept { return cancel_work_sync(item); }
/// Kernel `disable_delayed_work` (rule 33): disable_work(item).
inline bool disable_delayed_work(delayed_work& item) noexcept { return disable_work(item); }
/// Kernel `disable_delayed_work_sync` (rule 33): disable_work_sync(item).
inline bool disable_delayed_work_sync(delayed_work& item) noexcept {
  return disable_work_sync(item);
}
/// Kernel `enable_delayed_work` (rule 34): enable_work(item).
inline bool enable_delayed_work(delayed_work& item) noexcept { return enable_work(item); }

}  // namespace wq
