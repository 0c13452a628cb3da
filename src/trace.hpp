// SPDX-License-Identifier: BSL-1.0
// src/trace.hpp: the library's USDT probes, for perf, bpftrace, SystemTap and gdb (private).
//
// Four statically defined tracepoints with provider `wq`, named after the kernel's workqueue
// tracepoints and carrying the arguments of theirs that mean something here:
//   workqueue_queue_work(item, function, queue, queue_id)  an item was put on a queue to run
//   workqueue_activate_work(item)                          it became active (may be picked up)
//   workqueue_execute_start(item, function)                its work function is about to run
//   workqueue_execute_end(item, function)                  its work function returned
// `item` is the address of the `work` subobject, `function` the item's name (wq::work_name),
// `queue` the queue's name and `queue_id` its id (generation and registry slot). README.md,
// "Tracing with USDT probes", says where each fires as a user sees it.
//
// Built on <sys/sdt.h> (Debian: systemtap-sdt-dev) when the library is compiled with
// WQ_USDT=1 (the CMake option WQ_USDT). Otherwise every macro expands to nothing and its
// arguments are not evaluated, so no probe argument may have a side effect.
//
// Cost with probes compiled in and no tracer attached: each site is one `nop` plus an ELF note
// (.note.stapsdt, not loaded at run time) saying where the arguments live. The arguments must
// be in registers or memory at the `nop`: here that is at most a few loads (the item's name,
// the queue's id) and trace_name's null test; no call. A tracer that attaches replaces the
// `nop` with a breakpoint (a uprobe). The semaphore-guarded form (_SDT_HAS_SEMAPHORES) would
// skip those loads at the price of a load and a branch on a global at every site: nothing to
// gain, so the plain form is used.
//
// Thread safety and lifetime: a probe fires on the thread where the event happens, possibly
// under the queue's lock. The string arguments are valid only while the probe fires (a tracer
// copies them then); `item` is an identity only: at workqueue_execute_end the function may have
// freed it, and a tracer must not read through it at any probe.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <cstdint>

#include <wq/impl/work_access.hpp>
#include <wq/work.hpp>

#if defined(WQ_USDT) && WQ_USDT
#include <sys/sdt.h>

/// Fires workqueue_queue_work: `item` (a pointer to a wq::work or a class derived from it) was
/// put on queue `queue` (const char*, its name) with id `queue_id` to run; `function` (const
/// char*) is the item's name. Fired before the item is visible to a worker, so it precedes the
/// item's workqueue_execute_start. Delayed items fire it when their timer expires (or
/// flush_delayed_work / mod_delayed_work with no delay fire it at once), not when armed.
#define WQ_TRACE_QUEUE_WORK(item, function, queue, queue_id)                       \
  STAP_PROBE4(wq, workqueue_queue_work,                                            \
              static_cast<const void*>(static_cast<const ::wq::work*>(item)),      \
              static_cast<const char*>(function), static_cast<const char*>(queue), \
              static_cast<std::uint64_t>(queue_id))
/// Fires workqueue_activate_work: `item` (as above) became active, counted against max_active.
#define WQ_TRACE_ACTIVATE_WORK(item)       \
  STAP_PROBE1(wq, workqueue_activate_work, \
              static_cast<const void*>(static_cast<const ::wq::work*>(item)))
/// Fires workqueue_execute_start: the work function of `item` (as above), named `function`
/// (const char*), is about to be called. Called outside any lock.
#define WQ_TRACE_EXECUTE_START(item, function)                                \
  STAP_PROBE2(wq, workqueue_execute_start,                                    \
              static_cast<const void*>(static_cast<const ::wq::work*>(item)), \
              static_cast<const char*>(function))
/// Fires workqueue_execute_end: the work function of the item that was at `item` returned.
/// `item` may dangle (the function may have freed it): it is converted, never dereferenced.
/// `function` must have been obtained without reading the item after the call.
#define WQ_TRACE_EXECUTE_END(item, function)                                  \
  STAP_PROBE2(wq, workqueue_execute_end,                                      \
              static_cast<const void*>(static_cast<const ::wq::work*>(item)), \
              static_cast<const char*>(function))
#else
#define WQ_TRACE_QUEUE_WORK(item, function, queue, queue_id) static_cast<void>(0)
#define WQ_TRACE_ACTIVATE_WORK(item) static_cast<void>(0)
#define WQ_TRACE_EXECUTE_START(item, function) static_cast<void>(0)
#define WQ_TRACE_EXECUTE_END(item, function) static_cast<void>(0)
#endif

namespace wq::detail {

/// Returns the name of `item` for a probe argument, as wq::work_name does, but inline: a probe
/// site then costs a load rather than a call. Safety (relaxed): see wq::work_name.
inline const char* trace_name(const work& item) noexcept {
  const work_ops* ops = work_access::ops(item).load(std::memory_order_relaxed);
  return ops != nullptr ? ops->name : "unbound";
}

}  // namespace wq::detail
