// SPDX-License-Identifier: BSL-1.0
// wq/detail/work_state.hpp: the layout of a work item's atomic state word and its state machine.
// Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <cstdint>

namespace wq::detail {

/// The state word of every work item (the kernel's `work_struct::data`).
///
/// Layout (64 bits):
///   bit 0       PENDING    the item owns one pending instance (rule 1). Set by whoever wins the
///                          queueing race; cleared by the worker just before the function runs
///                          (rule 2), or by a canceller that stole the instance.
///   bit 1       QUEUED     linked on the worklist, inactive list or a worker's scheduled list of
///                          the queue named by QUEUE_ID, or taken ahead by one of its workers (in
///                          the worker's batch, on no list). Set under that queue's mutex;
///                          cleared under it, or by the worker starting the item (rule 2).
///   bit 2       ARMED      (delayed_work) deadline set and linked on the armed list of QUEUE_ID.
///                          Changed only under that queue's mutex.
///   bit 3       IN_FLIGHT  (delayed_work) exactly one Asio wait on the item's timer is
///                          outstanding. Set by the arming path, cleared only by the completion.
///   bits 4-5    LIST       while QUEUED: which list of the queue holds the item (worklist,
///                          inactive, a worker's: its scheduled list or the items it took
///                          ahead, deferred); under its mutex.
///   bit 6       VIRTUAL    (delayed_work) while ARMED: the deadline is on a wq::test_clock's
///                          virtual time and no wait is needed for it (the clock queues the
///                          item). Under QUEUE_ID's mutex. ARMED implies IN_FLIGHT or VIRTUAL.
///   bit 7       INTAKE     on the lock-free intake of the queue named by QUEUE_ID (queued by a
///                          plain queue_work that did not take the queue's mutex): pending, on
///                          no list yet. The next holder of that mutex links it (QUEUED).
///   bits 8-23   DISABLE    disable count (rules 16, 33, 34).
///   bits 24-25  COLOR      while QUEUED: the flush color the instance was queued with (the
///                          kernel's work colors; flush() waits for older colors only, rule 26).
///   bit 26      COALESCED  while PENDING in transit: a queueing call found the item pending and
///                          returned already_pending. If the instance was a queueing claim (or one
///                          a mod_delayed_work held) that a draining queue then refuses, the
///                          refusal links it anyway (settle_claim), so that call's instance
///                          runs. Cleared with PENDING, and when a queued or armed instance
///                          is taken off its list or timer (unlink_locked, disarm_locked):
///                          only marks made during a transit count.
///   bit 27      (unused)
///   bits 28-63  QUEUE_ID   slot (20 bits) and generation (16 bits) of the queue the item is, or
///                          last was, queued on. 0 = never queued.
///
/// States and transitions (P = PENDING, Q = QUEUED, A = ARMED):
///   idle (-)        --queue-->        in transit (P)  --link-->   queued (P|Q)
///   in transit (P)  --push-->         intake (P|I)    --absorb--> queued (P|Q)
///   idle            --queue_delayed-> in transit (P)  --arm-->    armed (P|A)
///   armed (P|A)     --timer fires-->  queued (P|Q)
///   queued (P|Q)    --worker pops-->  running (-)   [PENDING cleared before the call, rule 2]
///   running         --queue-->        pending again while running (allowed, rule 2)
/// "In transit" means the item's PENDING bit is owned by one thread that is about to link it (or
/// has just unlinked it to cancel or move it); nobody else may touch its hook or timer then.
using state_t = std::uint64_t;

inline constexpr state_t st_pending = state_t{1} << 0;
inline constexpr state_t st_queued = state_t{1} << 1;
inline constexpr state_t st_armed = state_t{1} << 2;
inline constexpr state_t st_in_flight = state_t{1} << 3;
inline constexpr state_t st_virtual = state_t{1} << 6;
inline constexpr state_t st_intake = state_t{1} << 7;

inline constexpr unsigned list_shift = 4;
inline constexpr state_t list_mask = state_t{3} << list_shift;
enum class list_kind : unsigned { work = 0, inactive = 1, scheduled = 2, deferred = 3 };
constexpr list_kind list_of(state_t s) noexcept {
  return static_cast<list_kind>((s & list_mask) >> list_shift);
}
constexpr state_t with_list(state_t s, list_kind k) noexcept {
  return (s & ~list_mask) | (static_cast<state_t>(k) << list_shift);
}

inline constexpr unsigned disable_shift = 8;
inline constexpr state_t disable_one = state_t{1} << disable_shift;
inline constexpr state_t disable_mask = state_t{0xffff} << disable_shift;
inline constexpr state_t disable_max = 0xffff;

inline constexpr unsigned color_shift = 24;
// Flush colors a queue counts its instances in (queue_core.hpp, flush_colors): up to
// nr_colors - 1 flushes of one queue may each wait for its own snapshot at once; one more waits
// until the oldest color drains before it takes its snapshot. The state word keeps 2 bits for
// the color (24-25).
inline constexpr unsigned nr_colors = 4;
inline constexpr state_t color_mask = state_t{nr_colors - 1} << color_shift;
static_assert(nr_colors >= 2 && nr_colors <= 4 && (nr_colors & (nr_colors - 1)) == 0,
              "a color is a power-of-two remainder that fits the state word's 2 bits");
inline constexpr state_t st_coalesced = state_t{1} << 26;
static_assert((color_mask & st_coalesced) == 0);
constexpr unsigned color_of(state_t s) noexcept {
  return static_cast<unsigned>((s & color_mask) >> color_shift);
}
constexpr state_t with_color(state_t s, unsigned color) noexcept {
  return (s & ~color_mask) | (static_cast<state_t>(color) << color_shift);
}

inline constexpr unsigned queue_id_shift = 28;
inline constexpr state_t queue_id_mask = ~state_t{0} << queue_id_shift;

inline constexpr unsigned core_index_bits = 20;
inline constexpr std::uint32_t core_index_mask = (1u << core_index_bits) - 1;
inline constexpr std::uint32_t core_gen_mask = (1u << 16) - 1;

constexpr state_t disable_count(state_t s) noexcept { return (s & disable_mask) >> disable_shift; }
constexpr std::uint64_t queue_id_of(state_t s) noexcept { return s >> queue_id_shift; }
constexpr state_t with_queue_id(state_t s, std::uint64_t id) noexcept {
  return (s & ~queue_id_mask) | (id << queue_id_shift);
}

}  // namespace wq::detail
