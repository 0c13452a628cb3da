// SPDX-License-Identifier: BSL-1.0
// Shared helpers for wq's tests: a latch with a timeout (a deadlock fails instead of hanging),
// counting owned objects, and a warning catcher.
//
// The work item helpers, one per API path a test drives (kept apart on purpose: merging them
// would leave a path untested):
//   fn_item, fn_delayed_item  (queue_kinds.hpp)  typed enqueue by raw pointer, std::function body
//   c_work, c_delayed         (cancel_items.hpp) C-style (fn_ops), accepted by the untyped calls
//   ctx_item                  (items.hpp)        C-style delayed item timed on the test's
//   io_context
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/diagnostics.hpp>
#include <wq/workqueue.hpp>

namespace wq_test {

/// How long a test waits for something that must happen (a failure instead of a hang).
inline constexpr std::chrono::milliseconds must_happen{5000};

/// Calls `attempt` until it returns true or `timeout` passes; yields between attempts. Used only
/// where a state change has no notification of its own (e.g. "drain() has started"), never to
/// wait for time to pass. Returns whether `attempt` succeeded. To wait for a flag without
/// synchronising with its writer (so that a missing happens-before edge in the library is left
/// for ThreadSanitizer to find), load it relaxed in `attempt`.
template <class F>
bool poll_until(F&& attempt, std::chrono::milliseconds timeout = must_happen) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!attempt()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Keeps the calling thread running for `d` of wall-clock time, yielding: a window for a race to
/// open (say, another worker starting an overlapping run of an item), never a synchronisation.
/// Bounded by the clock rather than by a count of yields, since on a busy machine each yield can
/// give a whole time slice to another process (64 functions of 200 yields took over 5 s under
/// ThreadSanitizer on one CPU shared with two busy processes).
inline void hold_for(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

/// A countdown latch whose wait gives up after a timeout and says so.
class latch {
 public:
  explicit latch(std::ptrdiff_t count) : count_(count) {}
  void count_down(std::ptrdiff_t n = 1) {
    std::lock_guard lk(mu_);
    count_ -= n;
    if (count_ <= 0) cv_.notify_all();
  }
  /// Returns true if the count reached zero within `timeout`.
  [[nodiscard]] bool wait_for(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [this] { return count_ <= 0; });
  }
  [[nodiscard]] std::ptrdiff_t remaining() {
    std::lock_guard lk(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::ptrdiff_t count_;
};

/// Live-object counter for ownership tests: every constructed object must be destroyed once.
struct lifetime_counter {
  std::atomic<int> constructed{0};
  std::atomic<int> destroyed{0};
  [[nodiscard]] int alive() const { return constructed.load() - destroyed.load(); }
};

/// A closure capture that counts every copy's construction and destruction in a
/// lifetime_counter, to prove a closure (run or refused) is destroyed.
class counted_capture {
 public:
  explicit counted_capture(lifetime_counter* life) : life_(life) {
    life_->constructed.fetch_add(1);
  }
  counted_capture(const counted_capture& other) : life_(other.life_) {
    life_->constructed.fetch_add(1);
  }
  counted_capture(counted_capture&& other) noexcept : life_(other.life_) {
    life_->constructed.fetch_add(1);
  }
  counted_capture& operator=(const counted_capture&) = delete;
  ~counted_capture() { life_->destroyed.fetch_add(1); }

 private:
  lifetime_counter* life_;
};

/// Collects the diagnostics (misuse and notices, wq/diagnostics.hpp) reported while it lives,
/// replacing the default handler (which aborts on misuse in debug builds). At most one may be
/// alive at a time (the handler is process-wide).
class warning_catcher {
 public:
  warning_catcher() : warning_catcher(std::nullopt) {}
  /// Also counts `fired` down once per diagnostic with code `signal_on`, so a test can wait for
  /// one; count() is then the number of those.
  explicit warning_catcher(std::optional<wq::errc> signal_on) : signal_on_(signal_on) {
    {
      std::lock_guard lk(mu());
      store().clear();
      codes().clear();
      signal() = {signal_on, &fired};
    }
    previous_ = wq::set_diagnostic_handler(&record);
  }
  ~warning_catcher() {
    wq::set_diagnostic_handler(previous_);
    std::lock_guard lk(mu());
    signal() = {};
  }
  warning_catcher(const warning_catcher&) = delete;
  warning_catcher& operator=(const warning_catcher&) = delete;

  /// Counted down once per diagnostic with the code given to the constructor.
  latch fired{1};
  /// Number of diagnostics with the code given to the constructor (0 without one).
  [[nodiscard]] int count() const { return signal_on_ ? count(*signal_on_) : 0; }

  [[nodiscard]] std::vector<std::string> messages() const {
    std::lock_guard lk(mu());
    return store();
  }
  [[nodiscard]] bool contains(const std::string& needle) const {
    std::lock_guard lk(mu());
    for (const auto& m : store())
      if (m.find(needle) != std::string::npos) return true;
    return false;
  }
  /// Number of diagnostics with code `e` so far.
  [[nodiscard]] int count(wq::errc e) const {
    std::lock_guard lk(mu());
    int n = 0;
    for (wq::errc c : codes()) n += c == e ? 1 : 0;
    return n;
  }
  [[nodiscard]] bool contains(wq::errc e) const { return count(e) > 0; }
  /// Number of diagnostics so far.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lk(mu());
    return codes().size();
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::string>& store() {
    static std::vector<std::string> v;
    return v;
  }
  static std::vector<wq::errc>& codes() {
    static std::vector<wq::errc> v;
    return v;
  }
  struct signal_state {
    std::optional<wq::errc> code;
    latch* fired = nullptr;
  };
  static signal_state& signal() {
    static signal_state s;
    return s;
  }
  static void record(const wq::diagnostic& d) noexcept {
    std::lock_guard lk(mu());
    store().emplace_back(d.message);
    codes().push_back(d.code);
    if (signal().code == d.code) signal().fired->count_down();
  }
  std::optional<wq::errc> signal_on_;
  wq::diagnostic_handler previous_ = nullptr;
};

/// Sets wq's wait limit (wq::set_wait_limit) while it lives, so a test that expects a blocking
/// wait to be refused for want of progress does not take the default second.
class wait_limit_scope {
 public:
  explicit wait_limit_scope(std::chrono::milliseconds limit)
      : previous_(wq::set_wait_limit(limit)) {}
  ~wait_limit_scope() { wq::set_wait_limit(previous_); }
  wait_limit_scope(const wait_limit_scope&) = delete;
  wait_limit_scope& operator=(const wait_limit_scope&) = delete;

 private:
  std::chrono::nanoseconds previous_;
};

}  // namespace wq_test
