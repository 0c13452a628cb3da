// SPDX-License-Identifier: BSL-1.0
// wq/stats.hpp: `queue_stats`, a snapshot of one queue's counters and latency histograms
// (`workqueue::stats()`), in the spirit of the kernel's wq_monitor.py.
//
// Counters are exact. Latency histograms are sampled: one queueing in `sample_every` is timed
// from queueing to start and from start to finish (an embedded item has no room for a
// timestamp, and reading the clock for every item would cost more than queueing it), so
// percentiles describe the distribution, not every item. At most 4 queueings are being timed at
// once: in a queue holding more than about 4 * sample_every items not yet started (a burst), the
// timed ones are a uniform random choice among the candidates (reservoir sampling), so the
// histogram keeps the waits' distribution, from fewer samples than one in sample_every (4 per
// burst queued faster than it starts). The queueing time is taken when the
// item is linked on the queue's list: an item queued through the lock-free intake while the
// workers are busy is linked by the next worker that takes the queue's lock, so its time on
// the intake (typically less than one item's run) is not counted. Buckets are powers of two of
// nanoseconds; a percentile is reported as the upper bound of its bucket (at most 2x high).
//
// Memory: a queue keeps its histograms in a block made by its first sample (one allocation,
// 120 bytes), made again with wider counts when one bucket first passes 255 samples (200 bytes,
// a few thousand queueings of that queue) and once more when one first passes 65 535 (360 bytes,
// about 10^6 queueings). Like the worker records counted by
// `peak_workers`, each is made once in a queue's life; queueing and running an embedded item
// allocate nothing else. Out of memory, the sample that needed it is not taken.
//
// Thread safety: plain values; `workqueue::stats()` may be called from any thread at any time.
#pragma once

#include <wq/config.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace wq {

/// A histogram of durations in power-of-two nanosecond buckets: bucket i counts samples in
/// [2^i, 2^(i+1)) ns (bucket 0 also counts 0 ns; the last bucket everything above).
struct latency_histogram {
  static constexpr int buckets = 40;  // up to 2^40 ns, about 18 minutes
  std::array<std::uint64_t, buckets> counts{};

  /// Number of samples.
  [[nodiscard]] std::uint64_t samples() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) n += c;
    return n;
  }

  /// The upper bound of the bucket holding the `p`-th percentile (0 < p <= 100), or zero
  /// without samples.
  [[nodiscard]] std::chrono::nanoseconds percentile(double p) const noexcept {
    const std::uint64_t n = samples();
    if (n == 0) return std::chrono::nanoseconds{0};
    const double rank = p / 100.0 * static_cast<double>(n);
    std::uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
      seen += counts[static_cast<std::size_t>(i)];
      if (static_cast<double>(seen) >= rank && seen > 0)
        return std::chrono::nanoseconds{std::int64_t{1} << (i + 1)};
    }
    return std::chrono::nanoseconds{std::int64_t{1} << buckets};
  }

  /// Returns: the bucket a sample of `d` falls in (a negative duration counts as 0).
  [[nodiscard]] static constexpr int bucket_of(std::chrono::nanoseconds d) noexcept {
    // Safety (static_cast): the count is clamped to >= 0 first.
    const auto ns = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    int b = 0;
    while (b + 1 < buckets && (std::uint64_t{1} << (b + 1)) <= ns) ++b;
    return b;
  }

  /// Adds one sample. (Used by the library; handy for merging in tests.)
  void add(std::chrono::nanoseconds d) noexcept {
    // Safety (static_cast): bucket_of returns 0 .. buckets - 1.
    ++counts[static_cast<std::size_t>(bucket_of(d))];
  }
};

/// A snapshot of one queue's activity since it was created (for a destroyed queue: its final
/// snapshot, taken by destroy() after everything had run).
struct queue_stats {
  std::string name;
  /// Instances that became pending here: queueing calls that returned queued (a delayed item
  /// counts when armed), including executor functions. mod_delayed_work counts here unless it
  /// only moved the deadline of an item already armed for this queue (the same instance).
  /// So, while no drain or destroy is in progress:
  /// queued == started + cancelled + armed + (in_flight - running).
  std::uint64_t queued = 0;
  /// Queueing calls on this queue that found the item already pending (rule 1): many queue
  /// attempts, one run.
  std::uint64_t coalesced = 0;
  /// Work functions started and finished.
  std::uint64_t started = 0;
  std::uint64_t finished = 0;
  /// Pending instances removed without running: cancel_*, disable, destroy of armed items, and
  /// instances mod_delayed_work replaced (a queued item, or one armed for another queue).
  std::uint64_t cancelled = 0;
  /// Now: queued, inactive or running (what drain waits for); of those, running; and armed
  /// delayed items targeting the queue (including one whose deadline a mod_delayed_work is
  /// moving at that moment, off the timer for an instant but still the same instance).
  std::uint64_t in_flight = 0;
  std::uint64_t running = 0;
  std::uint64_t armed = 0;
  /// Largest number of items waiting to start (worklist plus inactive) seen at once.
  std::uint64_t max_depth = 0;
  /// Largest number of workers the queue had at once (threads running its items, or posted to
  /// run them): at most max_active, 1 for an ordered queue. A queue allocates a worker's record
  /// the first time it reaches a new peak (its first worker is part of the queue), so code that
  /// counts allocations warms a queue up to its peak first, as it does a pool.
  std::uint64_t peak_workers = 0;
  /// Sampled queueing-to-start latency and run time.
  latency_histogram queue_latency;
  latency_histogram run_time;
  /// One queueing in this many is timed (a candidate); fewer in a queue deeper than 4 times
  /// this (the file comment).
  std::uint32_t sample_every = 0;
};

}  // namespace wq
