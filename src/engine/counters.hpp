// SPDX-License-Identifier: BSL-1.0
// src/engine/counters.hpp: the statistics mechanism (layer 0): how queueings, starts and
// finishes are counted, and how one queueing in sample_every is timed for the latency
// histograms (wq/stats.hpp). The counters themselves are queue_core::stats (queue_counters in
// queue_core.hpp); every function here requires the core's mutex held.
#pragma once

#include <algorithm>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: counts a pending instance cancelled (rules 28, 31). Requires: mu held.
inline void note_cancelled_locked(queue_counters& c) noexcept { ++c.cancelled; }

/// Effects: counts an instance that mod_delayed_work took off this queue's armed list to arm or
/// queue here again (it stays one instance, counted armed until then). Requires: mu held.
inline void note_moving_locked(queue_counters& c) noexcept { ++c.moving; }

/// Effects: a moving instance (note_moving_locked) is armed or queued here again: it is no
/// longer in transit. Requires: mu held.
inline void note_moved_back_locked(queue_counters& c) noexcept {
  if (c.moving > 0) --c.moving;
}

/// Effects: a moving instance did not come back (the item was disabled, or the queue refused
/// it): it counts as cancelled. Requires: mu held.
inline void note_move_dropped_locked(queue_counters& c) noexcept {
  note_moved_back_locked(c);
  ++c.cancelled;
}

/// Effects: counts a queueing call that found the item pending (rule 1). Thread safety: any
/// thread, no lock. Memory ordering: relaxed (a statistic; nothing is published through it).
inline void note_coalesced(queue_counters& c) noexcept {
  c.coalesced.fetch_add(1, std::memory_order_relaxed);
}

/// Effects: raises the queue's peak_workers to `nr_workers` if above it. Requires: mu held.
inline void count_peak_workers(queue_counters& c, int nr_workers) noexcept {
  // Safety (static_cast): a worker count is never negative, and at most max_workers, which is
  // at most max_max_active (2048): it fits peak_workers' 16 bits.
  if (static_cast<std::uint32_t>(nr_workers) > c.peak_workers)
    c.peak_workers = static_cast<std::uint16_t>(nr_workers);
}

/// Returns: 64 well-mixed bits of `x` (the splitmix64 finaliser): the reservoir's random
/// choice, drawn from the item's address and the queue's count of queueings, so that sampling
/// needs no state of its own. Deterministic, which a statistic can afford.
constexpr std::uint64_t sample_mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Returns: `w`'s bit in queue_counters::sample_filter: one of 32, from the top bits of a
/// multiplicative hash of its address (items side by side in an array get unrelated bits).
inline std::uint32_t sample_bit(const work* w) noexcept {
  // Safety (reinterpret_cast): the address is only hashed, never turned back into a pointer.
  // (static_cast: the shift leaves 5 bits.)
  const auto h = static_cast<std::uint32_t>(
      (reinterpret_cast<std::uintptr_t>(w) * 0x9e3779b97f4a7c15ULL) >> 59);
  return std::uint32_t{1} << h;
}

/// Effects: sets the filter from the items being timed. Requires: mu held; c.latency non-null.
inline void refilter(queue_counters& c) noexcept {
  std::uint32_t f = 0;
  for (const work* s : c.latency->sampled)
    if (s != nullptr) f |= sample_bit(s);
  c.sample_filter = f;
}

/// Returns: whether `w` may be a sampled item (false: it is not one), from the core alone.
/// Requires: mu held.
inline bool maybe_sampled(const queue_counters& c, const work* w) noexcept {
  return c.nr_samples != 0 && (c.sample_filter & sample_bit(w)) != 0;
}

/// Effects: records that `w` was linked with `depth` items waiting; every sample_every-th
/// queueing is a candidate for timing from now until it starts. A candidate takes a free sample
/// slot. When all nr_sample_slots are taken (the queue holds more than about sample_every *
/// nr_sample_slots items not yet started, as in a burst), the candidates keep a uniform random
/// choice among themselves (reservoir sampling, Vitter's algorithm R): the k-th candidate since
/// a slot last came free replaces a random sampled item with probability
/// nr_sample_slots / (nr_sample_slots + k). Without this the slots held the first candidates of
/// a burst, which wait least: 512 items of 1 ms queued at once reported a p50 latency of 33 ms
/// instead of about 256. A deep queue then gets fewer samples than one in sample_every, each
/// as likely as any other candidate.
/// Requires: mu held. Complexity: O(1) (nr_sample_slots slots). Allocates: the histograms, at
/// the queue's first candidate only (none if that fails; the next queueing tries again).
inline void sample_queued(queue_counters& c, const work& w, std::uint64_t depth) noexcept {
  // Safety (static_cast): the value is clamped to max_depth's 32 bits first (it saturates).
  if (depth > c.max_depth)
    c.max_depth = static_cast<std::uint32_t>(std::min<std::uint64_t>(depth, UINT32_MAX));
  if (++c.tick < sample_every) return;
  if (!c.latency) {
    // The queue's first sample: its histograms are made now (once per core). Out of memory,
    // no sample is taken; the next queueing tries again.
    c.latency = latency_histograms::make();
    if (!c.latency) return;
  }
  c.tick = 0;
  latency_histograms& h = *c.latency;
  if (c.nr_samples < h.sampled.size()) {
    for (std::size_t i = 0; i < h.sampled.size(); ++i) {
      if (h.sampled[i] == nullptr) {
        h.sampled[i] = &w;
        h.sampled_at[i] = std::chrono::steady_clock::now();
        ++c.nr_samples;
        c.sample_filter |= sample_bit(&w);
        return;
      }
    }
  }
  const std::uint64_t k = ++h.crowded;
  // Safety (reinterpret_cast): the address is only hashed, never turned back into a pointer.
  const std::uint64_t r = sample_mix(reinterpret_cast<std::uintptr_t>(&w) ^ (c.queued << 17) ^ k);
  const std::uint64_t slots = h.sampled.size();
  if ((r >> 32) % (slots + k) < slots) {
    h.sampled[r % slots] = &w;
    h.sampled_at[r % slots] = std::chrono::steady_clock::now();
    refilter(c);
  }
}

/// Effects: counts `w` started; if it was sampled, adds its queueing latency and returns true
/// with `now` set to its start time (the caller then times its run).
/// Requires: mu held. Complexity: O(1).
inline bool sample_started(queue_counters& c, const work* w,
                           std::chrono::steady_clock::time_point& now) noexcept {
  ++c.started;
  if (!maybe_sampled(c, w)) return false;
  latency_histograms& h = *c.latency;  // non-null: a sample exists
  for (std::size_t i = 0; i < h.sampled.size(); ++i) {
    if (h.sampled[i] == w) {
      now = std::chrono::steady_clock::now();
      h.sampled[i] = nullptr;
      h.crowded = 0;
      --c.nr_samples;
      refilter(c);
      // Last: add() may make the block again (wider), which h then no longer names.
      latency_histograms::add(c.latency, latency_histograms::kind::queue_latency,
                              now - h.sampled_at[i]);
      return true;
    }
  }
  return false;
}

/// Returns: whether `w`'s queueing is being timed (its start must be seen by sample_started).
/// Requires: mu held. Complexity: O(1).
inline bool is_sampled(const queue_counters& c, const work* w) noexcept {
  if (!maybe_sampled(c, w)) return false;
  const auto& s = c.latency->sampled;  // non-null: a sample exists
  return std::find(s.begin(), s.end(), w) != s.end();
}

/// Effects: drops the latency sample of `w`, if any (it was cancelled or dropped).
/// Requires: mu held. Complexity: O(1).
inline void forget_sample(queue_counters& c, const work* w) noexcept {
  if (!maybe_sampled(c, w)) return;
  latency_histograms& h = *c.latency;  // non-null: a sample exists
  for (auto& s : h.sampled) {
    if (s == w) {
      s = nullptr;
      h.crowded = 0;
      --c.nr_samples;
      refilter(c);
      return;
    }
  }
}

}  // namespace wq::detail
