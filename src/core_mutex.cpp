// SPDX-License-Identifier: BSL-1.0
// src/core_mutex.cpp: the futex calls behind core_mutex and wake_word (core_mutex.hpp).
#include "core_mutex.hpp"

#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace wq::detail {
namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain 32-bit word");

std::uint32_t* futex_addr(std::atomic<std::uint32_t>& word) noexcept {
  // Safety (reinterpret_cast): the kernel reads the 32-bit word at this address; the assertion
  // above makes std::atomic<std::uint32_t> exactly that word, lock-free.
  return reinterpret_cast<std::uint32_t*>(&word);
}

// Sleeps while `word` holds `expected`, for at most `timeout` (null: no limit). Returns on a
// wake-up, a timeout, a signal or a changed value alike: callers re-check.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const timespec* timeout) noexcept {
  (void)::syscall(SYS_futex, futex_addr(word), FUTEX_WAIT_PRIVATE, expected, timeout, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
  (void)::syscall(SYS_futex, futex_addr(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

}  // namespace

void core_mutex::lock_contended(std::uint32_t seen) noexcept {
  // Once a thread sleeps here the word says `sleepers_`, so the holder's unlock() wakes one;
  // a thread that takes the lock by this exchange marks it slept on too (it cannot know
  // whether others still sleep), costing at most one wake-up too many, as glibc's lock does.
  if (seen != sleepers_) seen = word_.exchange(sleepers_, std::memory_order_acquire);
  while (seen != free_) {
    futex_wait(word_, sleepers_, nullptr);
    seen = word_.exchange(sleepers_, std::memory_order_acquire);
  }
}

void core_mutex::wake_one() noexcept { futex_wake(word_, 1); }

void wake_word::wait_for(std::chrono::nanoseconds d) noexcept {
  if (d <= std::chrono::nanoseconds::zero()) return;
  // Announce the sleep, so that wake() knows to make the system call; a wake() already made
  // leaves the word at woken_ and the sleep is skipped.
  std::uint32_t seen = armed_;
  if (!word_.compare_exchange_strong(seen, sleeping_, std::memory_order_acquire,
                                     std::memory_order_acquire))
    return;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(s.count());
  ts.tv_nsec = static_cast<long>((d - s).count());
  futex_wait(word_, sleeping_, &ts);  // relative: FUTEX_WAIT measures it on CLOCK_MONOTONIC
  (void)word_.load(std::memory_order_acquire);  // pairs with wake()'s release exchange
}

void wake_word::wake() noexcept {
  if (word_.exchange(woken_, std::memory_order_release) == sleeping_) futex_wake(word_, 1);
}

}  // namespace wq::detail
