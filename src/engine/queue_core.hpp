// SPDX-License-Identifier: BSL-1.0
// src/engine/queue_core.hpp: the queue engine's state, one member object per mechanism (layer 0
// of src/engine/README.md; private to the library).
//
// One queue_core per live workqueue, allocated by the registry. A destroyed queue's core is
// retired (its generation bumped) and freed once nothing refers to it: no reference
// (`reg.refs`: the workqueue object, executor copies, helpers joining an orphaned pool, async
// waits registered on it), no worker handler posted for it (`reg.outstanding_handlers`) and no
// pin (registry.hpp: a lookup by a stale id, or a walk, in progress on another thread). Each
// field is tagged with what guards it (see queue_core).
#pragma once

#include <wq/delayed_work.hpp>
#include <wq/detail/async_waiter.hpp>
#include <wq/detail/core.hpp>
#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>
#include <wq/flags.hpp>
#include <wq/impl/claim.hpp>
#include <wq/impl/work_access.hpp>
#include <wq/observer.hpp>
#include <wq/queue_status.hpp>
#include <wq/stats.hpp>
#include <wq/work.hpp>

#include "../core_mutex.hpp"
#include "../worker_pool.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/parent_from_member.hpp>

namespace wq::detail {

struct watch_list;  // context_watch.hpp
struct run_record;

using work_list = boost::intrusive::list<
    work, boost::intrusive::member_hook<work, work_access::hook_type, work_access::hook_member>,
    boost::intrusive::constant_time_size<true>>;
/// A work_list that does not count its items (8 bytes less), for a list nothing asks the
/// length of.
using uncounted_work_list = boost::intrusive::list<
    work, boost::intrusive::member_hook<work, work_access::hook_type, work_access::hook_member>,
    boost::intrusive::constant_time_size<false>>;

struct ahead_batch;

/// What one worker handler holds while it runs (worker_scope, on the handler's stack): the item
/// it runs, the items handed to it by collision and the items it took ahead. The kernel keeps
/// this in its per-pool worker (`current_work`, `scheduled`) rather than in the workqueue; here
/// it lives in the handler's frame, so a queue pays for it only while a worker of it runs
/// (docs/benchmarks.md, "A 448-byte core"). Reached through worker_slot::run under mu.
struct worker_run {
  // Item being run, for non-reentrancy (rules 9-11), and its ops: identity is (address,
  // function). Written by the worker: under mu for an item it took from the lists, without mu
  // for one it took ahead (ahead_batch), always before that item clears PENDING; read under mu.
  // A (relaxed): a new instance of the item can only be queued after its PENDING was cleared
  // (acq_rel), and only reach a reader through the intake or the lists (acquire, or mu), so a
  // reader that could meet that instance sees the store; a stale value names an item that no
  // longer runs here, which only hands an instance to this worker (run later, not at once).
  std::atomic<work*> current{nullptr};
  std::atomic<const work_ops*> current_ops{nullptr};  // A (relaxed): as `current`
  // L: items handed to this worker by collision (rule 10). Empty when the handler leaves: it
  // runs them before it goes idle, and gives them back to the ready list when it yields.
  uncounted_work_list scheduled;
  run_record* rec = nullptr;  // I: the thread running this handler (wait graph), or null
  // L: the items the handler took ahead (on its stack), or null outside its loop.
  ahead_batch* ahead = nullptr;
  std::uint8_t current_color = 0;  // W: flush color of the instance being run (< nr_colors)
};

/// One worker: a handler posted to the executor (on a shared pool: the slot itself, submitted
/// as a pool_task), running items one after another. What a running handler holds is its own
/// (worker_run); the slot keeps what lasts from one handler to the next.
struct worker_slot : pool_task {
  // L: the running handler's state, set and cleared under mu by its worker_scope; null while
  // no handler of the slot runs (posted and not started, or idle). Every reader holds mu.
  worker_run* run = nullptr;
  bool active = false;  // L: a handler for this slot is posted or running
  // W: the last sampled item run here took at least relock_spin_after, on a machine with more
  // than one CPU: items are long, so the two workers of a queue rarely meet on its mutex, and
  // when they do, spinning for it beats sleeping (run_one).
  bool long_items = false;
  // L: set_worker_desc described the item running here; the text is in the description table
  // (descriptions.hpp), dropped when the item finishes.
  bool described = false;
  // L: items started here, modulo 2^32 (the watchdog's progress mark, compared for a change:
  // it would miss progress only if a slot started a multiple of 2^32 items between two of its
  // looks, minutes apart at the fastest rate items start).
  std::uint32_t runs = 0;
  // On a shared pool, the slot is its own handler (submitting allocates nothing): it runs
  // run_worker(owner_of(slot), gen, index). `index` is its place in its queue's slot store, set
  // when it is made and then constant; `gen` is written under mu when it is submitted.
  std::uint32_t index = 0;
  std::uint32_t gen = 0;

  /// Returns: the item this slot's handler runs now, or null. Requires: mu held.
  [[nodiscard]] work* running() const noexcept {
    // Safety (relaxed): see worker_run::current.
    return run != nullptr ? run->current.load(std::memory_order_relaxed) : nullptr;
  }
  /// Returns: the ops of running(), or null. Requires: mu held.
  [[nodiscard]] const work_ops* running_ops() const noexcept {
    // Safety (relaxed): see worker_run::current.
    return run != nullptr ? run->current_ops.load(std::memory_order_relaxed) : nullptr;
  }
};

/// A worker slot after a queue's first one: made one by one as the queue grows, each knowing
/// its queue (the first one, inside the core, finds its queue from its own address).
struct extra_worker_slot final : worker_slot {
  queue_core* owner = nullptr;  // set when made, then constant
};

/// Items a worker took off the lists ahead of running them, so that a run of short items costs
/// one acquisition of the mutex rather than one per item (docs/benchmarks.md, "The burst's
/// lever, measured"). Each stays an instance queued on the queue: PENDING and QUEUED with LIST
/// `scheduled` (assigned to a worker), counted active and in flight in its colour, but on no
/// list: its entry here names it. The worker starts an entry by exchanging it with null (no
/// mutex); anyone else takes one back under the mutex by exchanging it with null too, or by a
/// compare-exchange from the item it looks for (a canceller, pause, a worker with nothing else
/// to run, abandon). An entry only ever goes from an item to null, so exactly one side finds
/// the item; an entry is never filled again while the batch lasts, so a re-queued item cannot be
/// mistaken for the instance it held. On the worker's stack for one handler; worker_run::ahead
/// points at it.
struct ahead_batch {
  static constexpr int capacity = 16;
  // A: an entry's item, or null once started or taken back. Filled under mu (release by the
  // mutex); exchanged by the worker (acq_rel), exchanged or compare-exchanged by others under mu
  // (acq_rel).
  std::array<std::atomic<work*>, capacity> items{};
  // W, written under mu when the entry is filled: the colour of each entry's instance.
  std::array<unsigned, capacity> colors{};
  int n = 0;    // L: entries filled (written by the worker under mu, read by others under mu)
  int ran = 0;  // W: entries the worker ran, whose colours are, in order:
  std::array<unsigned, capacity> done_colors{};  // W
};

/// A queue's worker slots: the first one inline (an ordered queue never needs another), the
/// rest allocated one by one as the queue grows, so a queue that never grows allocates nothing
/// for them. A slot never moves once made (flush waiters, and a shared pool's task list, point
/// at it); the store only grows, and a recycled core keeps what it grew.
/// Thread safety: as the field holding it (workers_state::slots, guarded by mu).
class slot_store {
 public:
  /// Returns: how many slots exist (the first is made by the first emplace_back or resize).
  std::size_t size() const noexcept { return n_; }

  /// Returns: slot `i`. Requires: i < size().
  worker_slot& operator[](std::size_t i) noexcept { return i == 0 ? first_ : *more_[i - 1]; }
  const worker_slot& operator[](std::size_t i) const noexcept {
    return i == 0 ? first_ : *more_[i - 1];
  }

  /// Effects: appends an idle slot of `owner`'s queue, which holds this store (the first slot
  /// finds it from its own address; the others record it). Throws: std::bad_alloc, with no
  /// slot appended.
  void emplace_back(queue_core* owner) {
    if (n_ > 0) {
      if (n_ - 1 == cap_) {
        // Room for the pointer first (doubling), so that storing it below cannot fail.
        const std::uint32_t cap = std::max<std::uint32_t>(4, 2 * cap_);
        auto more = std::make_unique<std::unique_ptr<extra_worker_slot>[]>(cap);
        for (std::uint32_t i = 0; i + 1 < n_; ++i) more[i] = std::move(more_[i]);
        more_ = std::move(more);
        cap_ = cap;
      }
      auto slot = std::make_unique<extra_worker_slot>();
      slot->owner = owner;
      slot->index = n_;
      more_[n_ - 1] = std::move(slot);
    }
    ++n_;
  }

  /// Effects: appends idle slots of `owner`'s queue until there are `n` (never shrinks).
  /// Throws: std::bad_alloc; the slots appended before it stay.
  void resize(std::size_t n, queue_core* owner) {
    while (n_ < n) emplace_back(owner);
  }

  /// Returns: the store whose first slot is `first`. Requires: `first` is a store's first slot
  /// (its index is 0).
  static slot_store& of_first(worker_slot& first) noexcept {
    // Safety: container_of. Only a store's first_ has index 0 (the others are
    // extra_worker_slots numbered from 1 by emplace_back).
    return *boost::intrusive::get_parent_from_member(&first, &slot_store::first_);
  }

  template <class Store, class Slot>
  struct iterator_of {
    Store* store;
    std::size_t i;
    Slot& operator*() const noexcept { return (*store)[i]; }
    iterator_of& operator++() noexcept {
      ++i;
      return *this;
    }
    bool operator==(const iterator_of& o) const noexcept { return i == o.i; }
  };
  using iterator = iterator_of<slot_store, worker_slot>;
  using const_iterator = iterator_of<const slot_store, const worker_slot>;
  iterator begin() noexcept { return {this, 0}; }
  iterator end() noexcept { return {this, n_}; }
  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, n_}; }

 private:
  worker_slot first_;
  // Slots 1..n_-1, in an array of cap_ pointers (16 bytes here instead of a vector's 24 and a
  // count's 8). 32-bit counts: a queue has at most workers_state::slot_cap slots, an int.
  std::unique_ptr<std::unique_ptr<extra_worker_slot>[]> more_;
  std::uint32_t n_ = 0;
  std::uint32_t cap_ = 0;
};

/// A flush_work() caller waiting for one instance of an item to finish (stack-allocated by the
/// waiter, on its queue's waiters_state::flushers while it waits). Guarded by the core's mutex.
struct flush_waiter {
  work* item = nullptr;
  worker_slot* slot = nullptr;   // the worker running the awaited instance, once started
  bool started = false;          // the awaited instance has started (on `slot`)
  bool done = false;             // ... and finished
  flush_waiter* next = nullptr;  // the next one on the queue's list
};

/// What a blocked wait waits for, so that a change wakes the blocked threads only when one
/// waits for it (waiters.cpp: wake_after_run_locked, wake_after_unlink_locked).
enum class blocked_kind : std::uint8_t {
  other,        ///< woken by whoever completes what it waits for (flush_work, a destroy's end)
  drain,        ///< for nothing in flight (drain, destroy)
  item,         ///< for an item to stop running (cancel_*_sync)
  queue_flush,  ///< for flush colours to drain (flush)
};

/// A thread blocked in a wait on a queue (drain, destroy, flush, flush_work, cancel_*_sync),
/// on its own stack and wake-up word while it waits, linked on its queue's
/// waiters_state::blocked: the queue keeps one pointer for them instead of a condition
/// variable of its own (48 bytes a queue, most of which never see a blocking wait), and no
/// count of them: what each waits for is its `kind`. The kernel's wait-queue entries live on
/// the waiter's stack in the same way. Guarded by the core's mutex: `wake` is armed and woken
/// under it.
struct blocked_waiter {
  wake_word wake;
  blocked_kind kind = blocked_kind::other;
  blocked_waiter* next = nullptr;
  blocked_waiter* prev = nullptr;
};

inline constexpr std::uint32_t sample_every = 16;  // fits queue_counters::tick
inline constexpr int nr_sample_slots = 4;          // queueings timed at once, at most

/// The sampled latency histograms of one queue (stats.hpp): the queueing-to-start and the
/// run-time histogram, in the buckets of latency_histogram, and the outstanding samples: which
/// items are being timed and when each was queued (entries of empty slots are null or stale).
/// Made by the queue's first sample with 4-bit counts, two to a byte (112 bytes, 128 with
/// malloc's header); the first count to reach 15 makes them again with 8-bit counts (152
/// bytes), the first to reach 255 with 16-bit counts (232 bytes), and the first to reach
/// 65 535 with 32-bit counts (392 bytes), which saturate at 2^32 - 1 (2^36 queueings of one
/// queue in one bucket). So the many queues that see few samples, such as a session's, pay 120
/// bytes less than one that saw a few thousand queueings and 280 less than a busy one, and a
/// count is never lost to a narrow width; a queue never sampled pays none of it. Freed with the
/// queue. A worker compares each item it starts with the sampled ones, but reads this block
/// only when the core's filter (queue_counters::sample_filter) says the item may be one: a line
/// more per item costs a burst ~15%. Guarded as the field holding it (queue_counters::latency,
/// mu).
class latency_histograms {
 public:
  enum class kind : std::uint8_t { queue_latency, run_time };
  /// Frees histograms made by make() or add(), whatever their width.
  struct deleter {
    void operator()(latency_histograms* h) const noexcept;
  };
  using pointer = std::unique_ptr<latency_histograms, deleter>;

  /// Returns: empty histograms with 4-bit counts; null if out of memory.
  static pointer make() noexcept;
  /// Effects: adds a sample of `d` to histogram `k` of `*h`. If the count it goes to is at the
  /// limit of its width (4, 8 or 16 bits), first makes `*h` again with counts twice as wide
  /// (the counts and queueing times copied); out of memory for that, the sample is dropped (a
  /// statistic: the next one tries again). Requires: h non-null. Allocates: only that, three
  /// times in a queue's life at most.
  static void add(pointer& h, kind k, std::chrono::nanoseconds d) noexcept;
  /// Returns: histogram `k` with the 64-bit counts that stats() reports.
  [[nodiscard]] latency_histogram widen(kind k) const noexcept;
  /// Effects: zeroes every count, queueing time and sample (the width stays).
  void clear() noexcept;

  // The items whose queueing is being timed (nullptr: a free slot), and when each was queued.
  std::array<const work*, nr_sample_slots> sampled{};
  std::array<std::chrono::steady_clock::time_point, nr_sample_slots> sampled_at{};
  // Candidates that found every sample slot taken since a slot last came free: the
  // reservoir's count (sample_queued).
  std::uint32_t crowded = 0;

 private:
  // The count type of the first block: 4 bits (nibble_row holds a histogram's counts).
  struct nibble {};
  class nibble_row;
  template <class Count>
  struct block;
  explicit latency_histograms(std::uint8_t width) noexcept : width_(width) {}
  // Makes a block with counts of type Wide holding the counts and queueing times of `from`
  // (counts of type Narrow); null if out of memory.
  template <class Narrow, class Wide>
  static latency_histograms* grow(const latency_histograms& from) noexcept;
  // Calls f with the counts of this block, of the width width_ says.
  template <class F>
  decltype(auto) visit(F&& f) noexcept;
  template <class F>
  decltype(auto) visit(F&& f) const noexcept;

  // Bytes per count: the block is a block<std::uint8/16/32_t>; 0: a block<nibble>.
  std::uint8_t width_;
};

/// One histogram's counts at 4 bits each, two buckets to a byte (bucket 2j in the low half of
/// byte j). Read like an array of counts (operator[], size()), as the wider blocks are.
class latency_histograms::nibble_row {
 public:
  static constexpr std::uint8_t max = 15;
  /// Returns: bucket `i`'s count. Requires: i < size().
  std::uint8_t operator[](std::size_t i) const noexcept {
    // Safety (static_cast): a 4-bit value.
    return static_cast<std::uint8_t>((bytes_[i / 2] >> shift(i)) & max);
  }
  /// Effects: adds one to bucket `i`. Requires: i < size() and (*this)[i] < max.
  void add(std::size_t i) noexcept {
    // Safety (static_cast): the sum stays within the byte, since bucket i's half is below max.
    bytes_[i / 2] = static_cast<std::uint8_t>(bytes_[i / 2] + (1u << shift(i)));
  }
  static constexpr std::size_t size() noexcept { return latency_histogram::buckets; }

 private:
  static constexpr unsigned shift(std::size_t i) noexcept { return i % 2 == 0 ? 0 : 4; }
  static_assert(latency_histogram::buckets % 2 == 0, "two buckets to a byte");
  std::array<std::uint8_t, latency_histogram::buckets / 2> bytes_{};
};

template <class Count>
struct latency_histograms::block final : latency_histograms {
  block() noexcept : latency_histograms(sizeof(Count)) {}
  // [kind][bucket]
  std::array<std::array<Count, latency_histogram::buckets>, 2> counts{};
};

template <>
struct latency_histograms::block<latency_histograms::nibble> final : latency_histograms {
  block() noexcept : latency_histograms(0) {}
  std::array<nibble_row, 2> counts{};  // [kind]
};

template <class F>
decltype(auto) latency_histograms::visit(F&& f) noexcept {
  // Safety (static_cast): width_ says which block type this object was made as (make, grow).
  if (width_ == sizeof(std::uint32_t)) return f(static_cast<block<std::uint32_t>*>(this)->counts);
  if (width_ == sizeof(std::uint16_t)) return f(static_cast<block<std::uint16_t>*>(this)->counts);
  if (width_ == sizeof(std::uint8_t)) return f(static_cast<block<std::uint8_t>*>(this)->counts);
  return f(static_cast<block<nibble>*>(this)->counts);
}

template <class F>
decltype(auto) latency_histograms::visit(F&& f) const noexcept {
  // Safety (static_cast): as the non-const visit.
  if (width_ == sizeof(std::uint32_t))
    return f(static_cast<const block<std::uint32_t>*>(this)->counts);
  if (width_ == sizeof(std::uint16_t))
    return f(static_cast<const block<std::uint16_t>*>(this)->counts);
  if (width_ == sizeof(std::uint8_t))
    return f(static_cast<const block<std::uint8_t>*>(this)->counts);
  return f(static_cast<const block<nibble>*>(this)->counts);
}

inline void latency_histograms::deleter::operator()(latency_histograms* h) const noexcept {
  // Safety (static_cast): as visit; each block type is final, so its own delete is the right one.
  if (h->width_ == sizeof(std::uint32_t))
    delete static_cast<block<std::uint32_t>*>(h);
  else if (h->width_ == sizeof(std::uint16_t))
    delete static_cast<block<std::uint16_t>*>(h);
  else if (h->width_ == sizeof(std::uint8_t))
    delete static_cast<block<std::uint8_t>*>(h);
  else
    delete static_cast<block<nibble>*>(h);
}

inline latency_histograms::pointer latency_histograms::make() noexcept {
  return pointer(new (std::nothrow) block<nibble>{});
}

template <class Narrow, class Wide>
latency_histograms* latency_histograms::grow(const latency_histograms& from) noexcept {
  auto* wide = new (std::nothrow) block<Wide>{};
  if (wide == nullptr) return nullptr;
  // Safety (static_cast): the caller read from.width_, which says from is a block<Narrow>.
  const auto& narrow = static_cast<const block<Narrow>&>(from).counts;
  for (std::size_t r = 0; r < narrow.size(); ++r)
    for (std::size_t i = 0; i < narrow[r].size(); ++i) wide->counts[r][i] = narrow[r][i];
  wide->sampled = from.sampled;
  wide->sampled_at = from.sampled_at;
  wide->crowded = from.crowded;
  return wide;
}

inline void latency_histograms::add(pointer& h, kind k, std::chrono::nanoseconds d) noexcept {
  // Safety (static_cast): bucket_of returns 0 .. buckets - 1, and kind is 0 or 1.
  const auto b = static_cast<std::size_t>(latency_histogram::bucket_of(d));
  const auto row = static_cast<std::size_t>(k);
  if (h->width_ == 0) {
    auto& r = static_cast<block<nibble>*>(h.get())->counts[row];  // Safety: as visit
    if (r[b] != nibble_row::max) {
      r.add(b);
      return;
    }
    latency_histograms* wide = grow<nibble, std::uint8_t>(*h);
    if (wide == nullptr) return;  // this sample is dropped; the next one tries again
    h.reset(wide);
  }
  if (h->width_ == sizeof(std::uint8_t)) {
    auto& c = static_cast<block<std::uint8_t>*>(h.get())->counts[row][b];  // Safety: as visit
    if (c != UINT8_MAX) {
      ++c;
      return;
    }
    latency_histograms* wide = grow<std::uint8_t, std::uint16_t>(*h);
    if (wide == nullptr) return;  // this sample is dropped; the next one tries again
    h.reset(wide);
  }
  if (h->width_ == sizeof(std::uint16_t)) {
    auto& c = static_cast<block<std::uint16_t>*>(h.get())->counts[row][b];  // Safety: as visit
    if (c != UINT16_MAX) {
      ++c;
      return;
    }
    latency_histograms* wide = grow<std::uint16_t, std::uint32_t>(*h);
    if (wide == nullptr) return;  // as above
    h.reset(wide);
  }
  std::uint32_t& c = static_cast<block<std::uint32_t>*>(h.get())->counts[row][b];  // Safety: wide
  if (c != UINT32_MAX) ++c;
}

inline latency_histogram latency_histograms::widen(kind k) const noexcept {
  return visit([k](const auto& counts) {
    latency_histogram out;
    const auto& row = counts[static_cast<std::size_t>(k)];  // Safety: kind is 0 or 1
    for (std::size_t i = 0; i < row.size(); ++i) out.counts[i] = row[i];
    return out;
  });
}

inline void latency_histograms::clear() noexcept {
  visit([](auto& counts) { counts = {}; });
  sampled = {};
  sampled_at = {};
  crowded = 0;
}

/// The counters behind workqueue::stats() (the stats mechanism).
struct queue_counters {
  std::uint64_t queued = 0;     // L: mu
  std::uint64_t started = 0;    // L: mu
  std::uint64_t finished = 0;   // L: mu
  std::uint64_t cancelled = 0;  // L: mu
  // L: mu. Deepest the worklist was at a queueing, saturating at 2^32 - 1 (more items than
  // that waiting at once would be 128 GiB of bare work items).
  std::uint32_t max_depth = 0;
  // L: mu. Instances a mod_delayed_work took off this queue's armed list to arm or queue here
  // again (a deadline move that could not be made in place), counted from the grab to the
  // re-link under each one's lock, so that stats() counts them armed meanwhile.
  std::uint32_t moving = 0;
  // L: mu. Null until the queue's first sample (sample_queued); freed when its core is
  // recycled (maybe_recycle). Non-null whenever a sample is outstanding (nr_samples > 0) or a
  // run is being timed.
  latency_histograms::pointer latency;
  // L: mu. One bit per item being timed (sample_bit of each of latency->sampled): an item
  // whose bit is clear is not sampled, which a worker learns without reading the histograms'
  // block (a bit set is a maybe: about one item in eight then reads it while 4 are sampled).
  std::uint32_t sample_filter = 0;
  // L: mu. Largest wk.nr_workers seen (at most max_max_active, 2048: 16 bits).
  std::uint16_t peak_workers = 0;
  std::uint8_t tick = 0;        // L: mu. Queueings since the last candidate (< sample_every).
  std::uint8_t nr_samples = 0;  // L: mu. Used entries of latency->sampled (<= nr_sample_slots).
  // A: relaxed, counted without the mutex; only ever summed, orders nothing.
  std::atomic<std::uint64_t> coalesced{0};

  /// Effects: zeroes every counter. Requires mu held (coalesced: no concurrent queueing).
  void reset() noexcept {
    queued = started = finished = cancelled = max_depth = peak_workers = 0;
    moving = 0;
    if (latency) latency->clear();
    tick = 0;
    nr_samples = 0;
    sample_filter = 0;
    coalesced.store(0, std::memory_order_relaxed);
  }
};

// Guard tags on the fields below (as the kernel's workqueue.c tags its structs):
//   L:  the core's mutex `mu`;
//   R:  the registry's mutex (registry.cpp);
//   I:  immutable while the queue is live (written under mu when it is created);
//   A:  atomic, accessed without mu (the comment says which ordering and why);
//   W:  the worker running that slot (no lock).

/// The registry's part of a core: identity, liveness and the references that keep it from
/// being freed (registry.hpp).
struct registry_slot {
  std::uint32_t index = 0;  // its registry index: set by allocate_core, then constant
  std::uint32_t gen = 0;    // L: generation; the id is (gen << 20) | index
  // R (the registry's mutex): position in the registry's list of cores in use (taken by
  // allocate_core, given back when the core is freed), which for_each_core walks.
  std::uint32_t in_use_pos = 0;
  // L: worker handlers alive (posted, running, not yet freed): one per active slot (a handler
  // re-posting itself for fairness passes its count on), and a queue has at most
  // max_max_active (2048) active slots, so 16 bits.
  std::uint16_t outstanding_handlers = 0;
  // Its place in the registry's slab (< cores_per_slab, 64), set when made, then constant.
  std::uint8_t slab_pos = 0;
  bool live : 1 = false;      // L: between create_core and retire
  bool recycled : 1 = false;  // L: being freed (maybe_recycle; guards against a second time)
  // A (acq_rel): references held by handles (workqueue, queue_executor copies, orphan
  // joiners, async waits), changed without mu; the last release takes mu to free a retired
  // core.
  std::atomic<std::uint64_t> refs{0};
  // L: the pool the queue owns, if any. Joined by destroy() (or the orphan's helper thread),
  // freed only with the core, so executor copies outliving the queue name a valid context.
  std::unique_ptr<boost::asio::thread_pool> own_pool;
  // A (release/acquire): the queue's execution context, for queue_executor::query (an
  // executor may outlive its queue: its reference keeps the core).
  std::atomic<boost::asio::execution_context*> context{nullptr};
};

/// The intake: plain queueing (queue_work from any thread) links items here without the
/// mutex while the queue accepts them, so producers do not contend with workers for it. A
/// Treiber stack of items chained through their (unused) list hooks, newest first; the word
/// holds the queue's generation in its top 16 bits and the newest item (or intake_closed) in
/// the rest. Producers write it without the mutex: queue_core gives it a cache line of its own
/// (shared only with fields nobody touches per item).
struct intake_state {
  // A: pushed to with a CAS by producers; taken whole (and its items moved to the lists in
  // queueing order) only by a holder of mu, see take_intake_locked.
  std::atomic<std::uintptr_t> word{0};
  // A (seq_cst), written under mu: nr_workers == max_workers or a worker on its way (a mirror
  // of the workers' counts). Producers that see it set leave their items on the intake for the
  // running workers, which take it before they go idle (see update_saturated).
  std::atomic<bool> saturated{false};
};

/// Flush colors (rule 26): every queued or running instance counts in the color of the epoch it
/// was queued in; a flush bumps the epoch and waits until the colors of older epochs drain.
/// nr_colors epochs are in use at most: a new epoch's color must be free (try_advance). With
/// nr_colors = 4 (the kernel has 16), three flushes of one queue in progress at once each wait
/// for their own snapshot; a fourth waits for the oldest color to drain before it bumps the
/// epoch, and meanwhile the items queued get the current color, which it then waits for too (as
/// a kernel flusher on its overflow list does): finite, since every older color drains. 24
/// bytes instead of 72 in every queue. Guarded by the core's mutex (L), as its owner
/// worklist_state.
class flush_colors {
 public:
  /// Effects: counts an instance queued now. Returns: its color. 32-bit counts suffice: an
  /// instance is an item pending or running here, and each item is at most one of each, so a
  /// color counts at most twice the items in memory.
  unsigned add() noexcept {
    // Safety (static_cast): the remainder is below nr_colors.
    const auto c = static_cast<unsigned>(epoch_ % nr_colors);
    ++count_[c];
    return c;
  }
  /// Effects: uncounts an instance of color `c`. Returns: whether that color has drained.
  bool remove(unsigned c) noexcept { return --count_[c] == 0; }
  /// Returns: whether color `c` has no instance.
  [[nodiscard]] bool empty(unsigned c) const noexcept { return count_[c] == 0; }
  /// Returns: the current epoch (what a flush starting now waits through).
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  /// Effects: moves the epoch past `e0` once the next color is free, so instances queued from
  /// now on get a color no older instance holds. Returns: whether the epoch is past `e0`.
  bool try_advance(std::uint64_t e0) noexcept {
    if (epoch_ != e0) return true;
    if (count_[(e0 + 1) % nr_colors] != 0) return false;
    epoch_ = e0 + 1;
    return true;
  }
  /// Returns: whether every instance queued in an epoch <= `e0` has finished. In-flight epochs
  /// always lie within the last nr_colors ones. Complexity: O(nr_colors).
  [[nodiscard]] bool drained_through(std::uint64_t e0) const noexcept {
    for (std::uint64_t k = 0; k < nr_colors && k <= epoch_; ++k) {
      const std::uint64_t ep = epoch_ - k;
      if (ep <= e0 && count_[ep % nr_colors] != 0) return false;
    }
    return true;
  }
  /// Effects: back to epoch 0 with every color empty (a new queue).
  void reset() noexcept {
    epoch_ = 0;
    for (auto& n : count_) n = 0;
  }

 private:
  std::uint64_t epoch_ = 0;
  std::uint32_t count_[nr_colors] = {};
};

/// The worklist: queued items and the counts that decide activation and flushing.
struct worklist_state {
  work_list ready;                 // L: active items waiting for a worker, FIFO
  work_list inactive;              // L: items beyond max_active, FIFO (rule 37)
  int max_active = 1;              // L
  int nr_active = 0;               // L: items on ready, scheduled lists, taken ahead or running
  std::uint64_t nr_in_flight = 0;  // L: queued + inactive + running (what drain waits for)
  flush_colors colors;             // L (rule 26)
};

/// The workers: slots, the handlers posted for them, and where they are posted.
struct workers_state {
  // L: grown on demand up to slot_cap (slots never move, flush waiters point at them). A
  // slot's `long_items` is W.
  slot_store slots;
  // L: active slots. 16 bits, as max_workers: a queue runs at most max_max_active (2048)
  // workers at once.
  std::uint16_t nr_workers = 0;
  std::uint16_t max_workers = 1;  // L: min(max_active, slot_cap)
  int slot_cap = 1;  // I: most slots the queue may grow (its executor's concurrency, or
                     // max_active on a shared pool, where blocked workers are replaced)
  // L: worker handlers posted (or re-posted for fairness) that have not started yet. While
  // there is one, no other worker is posted: it takes the next item and, if more are
  // runnable, posts the next worker itself (claim_worker_slot), as the kernel's workers wake
  // one another instead of every queueing waking one. At most one per slot: 16 bits.
  std::uint16_t nr_unstarted = 0;
  // L: handlers inside run_worker for the live queue (destroy() waits for 0: a handler's tail
  // completes async waiters). At most one per slot: 16 bits.
  std::uint16_t nr_in_handler = 0;
  // A: handlers claimed under mu and being posted after it was released (post_claimed), so
  // the worker they wake does not block on mu. Incremented under mu (release: publishes the
  // claim), decremented when the post call has returned (release); retire_core and
  // executor_context_gone wait for 0 (acquire) before they tear down the executor or pool.
  std::atomic<int> posting{0};
  // L: handlers started, modulo 2^32 (progress for the wait graph, compared for a change
  // between two looks at one wait).
  std::uint32_t handler_starts = 0;
  // L: the executor destroyed a handler unrun, or its context was shut down: never post again
  bool executor_dead = false;
  // A (relaxed), set under mu: someone watches items finish (a blocked, flush_work or async
  // waiter, pause, a worker description): workers stop running items they took ahead and count
  // what they ran at once. Cleared under mu by a worker that finds no watcher.
  std::atomic<bool> watched{false};
  // A (relaxed): copies of the queue's executor with outstanding_work.tracked; while there
  // is one, the queue holds outstanding work on its executor. The 0 <-> 1 edges take mu and
  // call note_work_locked, which re-reads it. Written per asio::post through the executor:
  // kept off the observer's line (queue_core).
  std::atomic<std::int64_t> tracked{0};
  // L (reset when the queue retires); also used without mu by post_claimed, which retirement
  // waits for (posting). Null on a shared pool.
  std::unique_ptr<executor_box> executor;
  worker_pool* pool = nullptr;  // I: the shared pool the queue runs on, if any
};

/// The async waiters registered on a queue (async_flush, async_drain, async_cancel_sync,
/// async_destroy): a vector made by the queue's first registration, so that the many queues
/// that never see an async wait keep one pointer for them. Guarded by the core's mutex.
class async_waiter_list {
 public:
  /// Returns: whether none is registered.
  [[nodiscard]] bool empty() const noexcept { return !v_ || v_->empty(); }
  /// Returns: how many are registered.
  [[nodiscard]] std::size_t size() const noexcept { return v_ ? v_->size() : 0; }
  /// Returns: entry `i`. Requires: i < size().
  [[nodiscard]] async_waiter* operator[](std::size_t i) const noexcept { return (*v_)[i]; }
  /// Effects: registers `w`. Throws: std::bad_alloc, with `w` not registered.
  void push_back(async_waiter* w) {
    if (!v_) v_ = std::make_unique<std::vector<async_waiter*>>();
    v_->push_back(w);
  }
  /// Effects: removes entry `i`, moving the last entry into its place. Requires: i < size().
  void swap_remove(std::size_t i) noexcept {
    (*v_)[i] = v_->back();
    v_->pop_back();
  }
  /// Effects: removes every entry (the vector stays for the next registration).
  void clear() noexcept {
    if (v_) v_->clear();
  }

 private:
  std::unique_ptr<std::vector<async_waiter*>> v_;
};

/// Who waits for the queue: blocked threads, flush_work() callers, async waiters.
struct waiters_state {
  // L: threads blocked in a wait (wake_blocked_locked), each saying what it waits for
  blocked_waiter* blocked = nullptr;
  flush_waiter* flushers = nullptr;  // L: flush_work() callers waiting on this queue
  async_waiter_list async_waiters;   // L: async flush/drain/cancel_sync/destroy in progress
};

/// The delayed items whose timer targets this queue.
struct timers_state {
  work_list armed;  // L
};

/// Where the queue is in its life: paused, draining, dying, orphaned.
/// The flags are one byte of bits (8 bytes a queue less than six bools beside the count):
/// every one is read and written only under mu, so sharing a memory location is safe.
struct lifecycle_state {
  int draining = 0;         // L: drain() calls in progress
  bool dying : 1 = false;   // L: destroy in progress: only chained queueing accepted
  bool paused : 1 = false;  // L: rule 45: queued items stay queued, none start until resume
  // L: destroyed where it could not wait (§5.2): the worker that finds it idle retires it and
  // has own_pool (if any) joined by a helper thread.
  bool orphaned : 1 = false;
  bool destroy_notified : 1 = false;  // L: its async_destroy handlers were completed
  bool orphan_busy : 1 = false;       // L: a thread is completing them with mu released
  // L: items were dropped unrun because its executor's context shut down or destroyed the
  // worker handlers wq had posted (drop_abandoned, D19): destroy() then returns
  // errc::executor_stopped instead of an empty code, as not every item ran.
  bool items_dropped : 1 = false;
  uncounted_work_list deferred;  // L: delayed items that fired during a drain
};

/// One queue's engine state: one member per mechanism, each field tagged with its guard.
/// Layout (every byte here is a byte per queue, in memory and in creation time): the first
/// cache line holds the intake, which producers write without the mutex, the name (read per
/// item only for an observer) and the context watch (read at creation and destruction); the
/// mutex starts the next line, with the flags in the bytes its neighbour's alignment leaves
/// (read per item only by a worker, which holds that line then), and the state a worker takes
/// under it per item follows. The observer, which the producer and the workers both read per
/// item (the workers without the mutex, while they run items), sits on a line that no one
/// writes per item (bytes 320-383: the observer, the head of the armed list, the lifecycle),
/// and the statistics' counters, which the mutex's holder writes per item, have the last line
/// to themselves: beside the intake or the counters every such read is a cache miss for one
/// side. (Packed after the counters, where the workers' `tick` shares their line, they cost a
/// burst 15-30% and the producer half again its CPU time: docs/benchmarks.md, "A lighter
/// queue".) 448 bytes with libstdc++ on x86-64 (bytes/wq in bench/wq_scale.cpp weighs it): the
/// lock is one futex word (core_mutex.hpp), a sampled run's times are the worker handler's
/// (worker_scope), a pool task has no function pointer, a worker's description lives in a side
/// table (descriptions.hpp), the first worker slot finds its queue from its own address
/// (owner_of), blocked threads say what they wait for on their own stacks instead of being
/// counted here (blocked_waiter::kind), the counts bounded by max_max_active (2048) or by a
/// slab's 64 cores are 16 or 8 bits, what a running worker holds is on its handler's stack
/// (worker_run), and which items are being timed is in the histograms' block, made by the
/// first sample, with a 32-bit filter here (queue_counters::sample_filter).
struct queue_core {
  alignas(64) intake_state in;
  std::string name;  // I
  // L: the watch of the executor's execution context (context_watch.hpp), for a queue on the
  // application's executor; null otherwise.
  std::shared_ptr<watch_list> watch;
  alignas(64) core_mutex mu;
  // I. Beside the lock, in the bytes its 8-byte-aligned neighbour leaves: only a worker reads it
  // per item (long_running), and a worker holds the lock's line then.
  queue_flags flags = queue_flags::none;
  registry_slot reg;
  worklist_state wl;
  workers_state wk;
  waiters_state wt;
  std::atomic<observer*> obs{nullptr};  // A (relaxed): see workqueue::set_observer
  timers_state tm;
  lifecycle_state lc;
  alignas(64) queue_counters stats;  // its own line: written by the workers per item

  [[nodiscard]] std::uint64_t id() const noexcept {
    return (std::uint64_t{reg.gen} << core_index_bits) | reg.index;
  }
};

#if defined(__GLIBCXX__) && defined(__x86_64__)
// The layout's budget (see queue_core): a field that grows the core past it must say why, here
// and in docs/benchmarks.md, since every queue pays it in memory and in creation time.
static_assert(sizeof(queue_core) <= 448, "queue_core grew past its 448-byte budget");
#endif

/// Returns: the queue core whose slot store holds `s`. Thread safety: any thread that may use
/// the slot (its index and, for an extra slot, its owner are constant once it is made).
inline queue_core* owner_of(worker_slot& s) noexcept {
  // Safety (static_cast): every slot but a store's first is an extra_worker_slot
  // (slot_store::emplace_back), and only the first has index 0.
  if (s.index != 0) return static_cast<extra_worker_slot&>(s).owner;
  // Safety: container_of, twice. A first slot is the `slots` member of a queue core's `wk`.
  workers_state* wk =
      boost::intrusive::get_parent_from_member(&slot_store::of_first(s), &workers_state::slots);
  return boost::intrusive::get_parent_from_member(wk, &queue_core::wk);
}

/// Returns: whether anyone watches the queue's items finish, so that its workers must count each
/// item finished as it returns rather than at the end of the items they took ahead: a thread
/// blocked in a wait, a flush_work() caller, an async waiter; or whether the queue is paused.
/// Requires: mu held.
inline bool watchers_locked(const queue_core* core) noexcept {
  return core->wt.blocked != nullptr || core->wt.flushers != nullptr ||
         !core->wt.async_waiters.empty() || core->lc.paused;
}

/// Effects: tells the queue's workers that someone watches (workers_state::watched): they stop
/// running items they took ahead at the next item's end. Requires: mu held (the flag is cleared
/// under it only when watchers_locked is false).
inline void watch_locked(queue_core* core) noexcept {
  // Safety (relaxed): a hint for the workers' latency only; what they ran is counted under mu
  // whenever they see it (ahead_batch).
  core->wk.watched.store(true, std::memory_order_relaxed);
}

/// Starts or ends the queue's outstanding work on its executor (Asio's convention) to match
/// whether it has work: queued, inactive or running items, armed or deferred delayed items, or
/// tracked copies of its executor. Call it after any change that may cross the idle/busy edge.
/// Requires mu held. Complexity: O(1); a no-op for queues on their own pool.
inline void note_work_locked(queue_core* core) noexcept {
  executor_box* ex = core->wk.executor.get();
  if (ex == nullptr || ex->track == nullptr) return;
  // Safety (relaxed): the tracked count's edges take mu before calling this, so the last
  // edge's value is seen here (see add_tracked in engine.cpp).
  const bool busy = core->wl.nr_in_flight > 0 || !core->tm.armed.empty() ||
                    !core->lc.deferred.empty() ||
                    core->wk.tracked.load(std::memory_order_relaxed) > 0;
  if (busy != ex->tracking) ex->track(ex, busy);
}
}  // namespace wq::detail
