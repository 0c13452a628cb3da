// SPDX-License-Identifier: BSL-1.0
// The pool manager thread: see pool_manager.hpp.
#include "pool_manager.hpp"

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "worker_pool.hpp"

namespace wq::detail {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto never = clock::time_point::max();

// The manager's state. Immortal: leaked on purpose so that it may be kicked
// during static destruction.
struct manager_state {
  std::mutex mu;  // ML
  std::condition_variable cv;
  bool kicked = false;   // ML: a pool asked for a pass
  bool started = false;  // ML: the thread runs
};
manager_state& manager() noexcept {
  static manager_state* m = new manager_state;  // Safety: never freed (see above).
  return *m;
}

void manager_main() noexcept {
  (void)::pthread_setname_np(::pthread_self(), "wq-manager");
  manager_state& m = manager();
  auto next = never;
  for (;;) {
    {
      std::unique_lock lk(m.mu);
      while (!m.kicked) {
        if (next == never) {
          m.cv.wait(lk);
        } else if (m.cv.wait_until(lk, next) == std::cv_status::timeout) {
          break;
        }
      }
      m.kicked = false;
    }
    next = never;
    const auto now = clock::now();
    for (std::size_t k = 0; k < nr_pool_kinds; ++k) {
      worker_pool* p = existing_pool(static_cast<pool_kind>(k));
      if (p == nullptr) continue;
      auto look = never;
      for (unsigned n = p->manage(now, look); n > 0; --n) p->start_worker();
      next = std::min(next, look);
    }
  }
}

}  // namespace

std::int64_t thread_cpu_time_ns(clockid_t c) noexcept {
  timespec ts{};
  if (::clock_gettime(c, &ts) != 0) return 0;
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool thread_sleeping(int tid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // The state follows the command name in parentheses, which may itself contain ')'.
  const char* close = std::strrchr(buf, ')');
  if (close == nullptr || close[1] != ' ') return false;
  return close[2] == 'S' || close[2] == 'D';
}

bool kick_pool_manager() noexcept {
  manager_state& m = manager();
  {
    std::lock_guard lk(m.mu);
    m.kicked = true;
    if (m.started) {
      m.cv.notify_one();
      return true;
    }
    try {
      std::thread(manager_main).detach();
      m.started = true;
      return true;
    } catch (...) {
      // No thread (or memory) for it now: tasks stay queued; the next kick tries again.
    }
  }
  report(errc::worker_post_failed,
         "wq pools: cannot start the pool manager thread; items stay "
         "queued, retried at the next queueing or wait");
  return false;
}

}  // namespace wq::detail
