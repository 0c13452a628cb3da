// SPDX-License-Identifier: BSL-1.0
// src/engine/counters.hpp: the statistics mechanism (layer 0): how queueings, starts and
// finishes are counted, and how one queueing in sample_every is timed for the latency
// histograms (wq/stats.hpp). The counters themselves are queue_core::stats (queue_counters in
// queue_core.hpp); every function here requires the core's mutex held.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <new>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: counts a pending instance cancelled (rules 28, 31). Requires: mu held.
inline void note_cancelled_locked(queue_counters& c) noexcept { ++c.cancelled; }

/// Effects: counts a queueing call that found the item pending (rule 1). Thread safety: any
/// thread, no lock. Memory ordering: relaxed (a statistic; nothing is published through it).
inline void note_coalesced(queue_counters& c) noexcept {
  c.coalesced.fetch_add(1, std::memory_order_relaxed);
}

/// Effects: raises the queue's peak_workers to `nr_workers` if above it. Requires: mu held.
inline void count_peak_workers(queue_counters& c, int nr_workers) noexcept {
  if (static_cast<std::uint64_t>(nr_workers) > c.peak_workers)
    c.peak_workers = static_cast<std::uint64_t>(nr_workers);
}

/// Effects: records that `w` was linked with `depth` items waiting, and times it from now
/// until it starts if this is the sample_every-th queueing and a sample slot is free.
/// Requires: mu held. Complexity: O(1) (four sample slots). Allocates: the histograms, at the
/// queue's first sample only (none if that fails).
inline void sample_queued(queue_counters& c, const work& w, std::uint64_t depth) noexcept {
  if (depth > c.max_depth) c.max_depth = depth;
  if (++c.tick < sample_every || c.nr_samples >= static_cast<int>(c.samples.size())) return;
  if (!c.latency) {
    // The queue's first sample: its histograms are made now (once per core). Out of memory,
    // no sample is taken; the next queueing tries again.
    c.latency.reset(new (std::nothrow) latency_histograms{});
    if (!c.latency) return;
  }
  c.tick = 0;
  for (auto& s : c.samples) {
    if (s.item == nullptr) {
      s = {&w, std::chrono::steady_clock::now()};
      ++c.nr_samples;
      return;
    }
  }
}

/// Effects: counts `w` started; if it was sampled, adds its queueing latency and returns true
/// with `now` set to its start time (the caller then times its run).
/// Requires: mu held. Complexity: O(1).
inline bool sample_started(queue_counters& c, const work* w,
                           std::chrono::steady_clock::time_point& now) noexcept {
  ++c.started;
  if (c.nr_samples == 0) return false;
  for (auto& s : c.samples) {
    if (s.item == w) {
      now = std::chrono::steady_clock::now();
      c.latency->queue_latency.add(now - s.at);  // non-null: a sample exists
      s.item = nullptr;
      --c.nr_samples;
      return true;
    }
  }
  return false;
}

/// Effects: drops the latency sample of `w`, if any (it was cancelled or dropped).
/// Requires: mu held. Complexity: O(1).
inline void forget_sample(queue_counters& c, const work* w) noexcept {
  if (c.nr_samples == 0) return;
  for (auto& s : c.samples) {
    if (s.item == w) {
      s.item = nullptr;
      --c.nr_samples;
      return;
    }
  }
}

}  // namespace wq::detail
