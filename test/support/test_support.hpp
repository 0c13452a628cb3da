// SPDX-License-Identifier: BSL-1.0
// Shared helpers for wq's tests: a latch with a timeout (a deadlock fails instead of hanging),
// counting owned objects, and a warning catcher.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/diagnostics.hpp>
#include <wq/workqueue.hpp>

namespace wq_test {

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
/// replacing the default handler (which aborts on misuse in debug builds).
class warning_catcher {
 public:
  warning_catcher() {
    {
      std::lock_guard lk(mu());
      store().clear();
      codes().clear();
    }
    previous_ = wq::set_diagnostic_handler(&record);
  }
  ~warning_catcher() { wq::set_diagnostic_handler(previous_); }
  warning_catcher(const warning_catcher&) = delete;
  warning_catcher& operator=(const warning_catcher&) = delete;

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
  static void record(const wq::diagnostic& d) noexcept {
    std::lock_guard lk(mu());
    store().emplace_back(d.message);
    codes().push_back(d.code);
  }
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
