// SPDX-License-Identifier: BSL-1.0
// src/core_mutex.hpp: the queue core's lock and a blocked thread's wake-up word, each one
// 32-bit futex word (private to the library; Linux, as the rest of the library).
//
// Why not std::mutex and std::condition_variable: every queue carries its lock, and
// std::mutex is 40 bytes of which the lock needs 4 (glibc's pthread_mutex_t holds a type, an
// owner, a count and a robust-list node a default mutex never uses); a condition variable is
// 48. Both algorithms here are the ones glibc runs for a default mutex and for a wait with a
// timeout (a three-state word: free, locked, locked with sleepers; FUTEX_WAIT / FUTEX_WAKE), so
// the cost per lock is the same, without the call into libpthread. Neither spins: a caller
// that wants to spin does it with try_lock (workers.cpp, relock).
//
// Memory ordering: lock() and a successful try_lock() acquire, unlock() releases, on the one
// word, so everything written under the lock happens before what the next holder reads
// (ThreadSanitizer sees the same edges through the atomics). wake_word::wake() releases and
// wake_word::wait_for() acquires.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace wq::detail {

/// A non-recursive mutex in one 32-bit word (Lockable: usable with std::unique_lock and
/// std::lock_guard). Not fair, as a default std::mutex is not.
/// Thread safety: any thread. Contracts: unlock() only by the holder; not locked when
/// destroyed; lock() by the holder deadlocks, as a default std::mutex's does.
class core_mutex {
 public:
  core_mutex() noexcept = default;
  core_mutex(const core_mutex&) = delete;
  core_mutex& operator=(const core_mutex&) = delete;

  /// Effects: blocks until the calling thread holds the lock. Memory ordering: acquire.
  void lock() noexcept {
    std::uint32_t seen = free_;
    if (!word_.compare_exchange_strong(seen, locked_, std::memory_order_acquire,
                                       std::memory_order_relaxed))
      lock_contended(seen);
  }

  /// Effects: takes the lock if it is free. Returns: whether it did. Memory ordering: acquire
  /// when it returns true.
  bool try_lock() noexcept {
    std::uint32_t seen = free_;
    return word_.compare_exchange_strong(seen, locked_, std::memory_order_acquire,
                                         std::memory_order_relaxed);
  }

  /// Effects: releases the lock and wakes one sleeper, if any slept. Requires: held by the
  /// calling thread. Memory ordering: release.
  void unlock() noexcept {
    if (word_.exchange(free_, std::memory_order_release) == sleepers_) wake_one();
  }

 private:
  static constexpr std::uint32_t free_ = 0;
  static constexpr std::uint32_t locked_ = 1;    // held, no one sleeps on it
  static constexpr std::uint32_t sleepers_ = 2;  // held, and someone may sleep on it

  // The slow path of lock(): marks the word as slept on and sleeps until it is free; `seen` is
  // the value the fast path found.
  void lock_contended(std::uint32_t seen) noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> word_{free_};
};

/// The lock type of a held core mutex, as the engine's functions take it.
using core_lock = std::unique_lock<core_mutex>;

/// A one-shot wake-up for one thread that sleeps with a lock released: the sleeper arms it
/// (arm(), under the lock), releases the lock, sleeps in wait_for() and takes the lock again;
/// a waker holding the lock calls wake(). A wake() between arm() and wait_for() is not lost:
/// wait_for() then returns at once. Spurious returns happen (a signal); the sleeper re-checks
/// what it waits for, as with a condition variable.
/// Thread safety: arm() and wait_for() by the sleeper, wake() by any thread while the sleeper
/// cannot have gone (under the lock the sleeper takes before it unlinks).
class wake_word {
 public:
  /// Effects: clears an earlier wake-up. Memory ordering: relaxed (made under the lock).
  void arm() noexcept { word_.store(armed_, std::memory_order_relaxed); }

  /// Effects: sleeps until wake() after the last arm(), `d` passed, or a spurious return.
  /// Memory ordering: acquire.
  void wait_for(std::chrono::nanoseconds d) noexcept;

  /// Effects: wakes the sleeper (or makes its next wait_for() return at once); a system call
  /// only if it sleeps. Memory ordering: release.
  void wake() noexcept;

 private:
  static constexpr std::uint32_t armed_ = 0;
  static constexpr std::uint32_t woken_ = 1;
  static constexpr std::uint32_t sleeping_ = 2;  // armed, and the sleeper is in the system call

  std::atomic<std::uint32_t> word_{armed_};
};

}  // namespace wq::detail
