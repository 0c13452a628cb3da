// SPDX-License-Identifier: BSL-1.0
// The process-wide worker pools: see worker_pool.hpp for the mechanism and the lock rules (the
// manager thread is in pool_manager.cpp).
#include "worker_pool.hpp"

#include "pool_manager.hpp"

#include <wq/detail/core.hpp>
#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <new>
#include <thread>

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace wq::detail {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto never = clock::time_point::max();

thread_local pool_thread* tl_pool_thread = nullptr;

// A worker with no CPU time for this long inside one item is checked for sleeping.
constexpr std::chrono::milliseconds sleep_after{1};

// Whether worker `th`, whose progress mark read `p`, is asleep inside that item: the kernel
// reports it sleeping and the mark still reads `p` afterwards. The second read matters: reading
// /proc takes long enough for a worker that was only descheduled to finish its item meanwhile
// and block on the pool's mutex, which the manager holds while it looks (seen as one spare
// worker in about 1 of 20 runs of pool_test's flood case beside another busy process).
// Thread safety: manager thread, PL held.
bool asleep_in_item(const pool_thread& th, std::uint64_t p) noexcept {
  if (!thread_sleeping(th.tid)) return false;
  // Safety (relaxed): compared with an earlier value of the same counter, which only its
  // thread writes; the /proc read in between is a system call, after the sleep it saw.
  return th.progress.load(std::memory_order_relaxed) == p;
}

// Whether worker `th`, whose progress mark has read `p` for `wall` (its CPU time `cpu` now,
// th.seen_cpu_ns then), has been inside one item past the CPU-intensive threshold `thr`
// (rule 42). As the kernel's cpu_intensive_thresh_us, the threshold counts the CPU time the
// item used: a worker the OS descheduled (runnable, waiting for a CPU) is not past it however
// long it waits, since a spare worker would only compete for the same CPUs (on a 2-core
// machine, 10^5 queues' round-robin grew the unbound pool to 12 workers that way, each slowing
// the rest). A worker asleep past it in wall time is (what detect_sleeping finds earlier).
// Reads /proc/self/task/<tid>/stat only in that last case. Thread safety: manager thread, PL
// held.
bool past_threshold(const pool_thread& th, std::uint64_t p, clock::duration wall, std::int64_t cpu,
                    std::chrono::microseconds thr) noexcept {
  if (wall < thr) return false;
  // A CPU clock that could not be read (0) leaves the wall time to decide.
  if (cpu == 0 || cpu - th.seen_cpu_ns >= std::chrono::nanoseconds(thr).count()) return true;
  return asleep_in_item(th, p);
}

unsigned cores() noexcept {
  // Read once: hardware_concurrency() reads sysfs on every call.
  static const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  return n;
}

bool is_unbound(pool_kind k) noexcept {
  return k == pool_kind::unbound || k == pool_kind::unbound_highpri;
}
bool is_highpri(pool_kind k) noexcept {
  return k == pool_kind::highpri || k == pool_kind::unbound_highpri;
}

std::array<std::atomic<worker_pool*>, nr_pool_kinds>& pools() noexcept {
  static std::array<std::atomic<worker_pool*>, nr_pool_kinds> p{};
  return p;
}
std::mutex& pools_mu() noexcept {
  static std::mutex mu;
  return mu;
}

// Gives the calling highpri worker the best priority allowed (rule 43); reports once if that
// is not nice -20.
void raise_priority() noexcept {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  if (::setpriority(PRIO_PROCESS, tid, -20) == 0) return;
  // Unprivileged: RLIMIT_NICE allows down to 20 - rlim_cur.
  int best = 0;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 0)
    best = std::max(-20, 20 - static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 40)));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (best < now) (void)::setpriority(PRIO_PROCESS, tid, best);
  errno = 0;
  const int got = ::getpriority(PRIO_PROCESS, tid);
  // A once-flag (relaxed: it publishes nothing; at worst two threads race to report once each).
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true, std::memory_order_relaxed))
    report(errc::priority_not_raised,
           "highpri pool workers run at nice %d, not -20 (needs root "
           "or CAP_SYS_NICE, or RLIMIT_NICE)",
           got);
}

// What every pool runs for a task (set_task_entry). Atomic only because every core creation
// stores it again.
std::atomic<void (*)(pool_task*) noexcept> task_entry{nullptr};

}  // namespace

void worker_pool::set_task_entry(void (*entry)(pool_task*) noexcept) noexcept {
  task_entry.store(entry, std::memory_order_relaxed);
}

pool_thread* this_pool_thread() noexcept { return tl_pool_thread; }

worker_pool* existing_pool(pool_kind kind) noexcept {
  // Safety (acquire): pairs with the release in pool_for.
  return pools()[static_cast<std::size_t>(kind)].load(std::memory_order_acquire);
}

pool_kind pool_kind_for(queue_flags flags, bool ordered) noexcept {
  const bool unbound = has_flag(flags, queue_flags::unbound) || ordered;
  const bool hi = has_flag(flags, queue_flags::highpri);
  return unbound ? (hi ? pool_kind::unbound_highpri : pool_kind::unbound)
                 : (hi ? pool_kind::highpri : pool_kind::normal);
}

worker_pool& pool_of_kind(pool_kind kind) {
  if (worker_pool* p = existing_pool(kind)) return *p;
  std::lock_guard lk(pools_mu());
  auto& slot = pools()[static_cast<std::size_t>(kind)];
  worker_pool* p = slot.load(std::memory_order_relaxed);
  if (p == nullptr) {
    p = new worker_pool(kind);  // Safety: never freed (see worker_pool.hpp, Lifetime).
    slot.store(p, std::memory_order_release);
  }
  return *p;
}

worker_pool::worker_pool(pool_kind kind) : kind_(kind) { set_options(pool_options{}); }

void worker_pool::set_options(const pool_options& o) noexcept {
  // Out-of-range values are clamped (no arithmetic on them may overflow): durations to
  // [0, 1 day], counts to [1, 65536] (concurrency 0 keeps meaning "the number of cores").
  constexpr std::int64_t day_us = std::int64_t{86'400} * 1'000'000;
  constexpr std::int64_t day_ms = std::int64_t{86'400} * 1'000;
  constexpr unsigned most = 65'536;
  // Safety (relaxed): plain settings, read at each decision; nothing else is published.
  opt_concurrency_.store(std::min(o.concurrency, most), std::memory_order_relaxed);
  opt_threshold_us_.store(std::clamp<std::int64_t>(o.cpu_intensive_threshold.count(), 0, day_us),
                          std::memory_order_relaxed);
  opt_idle_ms_.store(std::clamp<std::int64_t>(o.idle_timeout.count(), 0, day_ms),
                     std::memory_order_relaxed);
  opt_detect_sleeping_.store(o.detect_sleeping, std::memory_order_relaxed);
  const unsigned max_threads = std::clamp(o.max_threads, 1u, most);
  if (opt_max_threads_.exchange(max_threads, std::memory_order_relaxed) != max_threads) {
    std::lock_guard lk(mu_);
    saturation_reported_ = false;  // a new bound: reaching it is news again
  }
  idle_cv_.notify_all();  // idle workers recompute whether they are extra
  nudge();                // a higher concurrency or max_threads may let waiting tasks start
}

pool_options worker_pool::options() const noexcept {
  pool_options o;
  o.concurrency = concurrency();
  o.cpu_intensive_threshold = threshold();
  o.idle_timeout = std::chrono::milliseconds(opt_idle_ms_.load(std::memory_order_relaxed));
  o.max_threads = opt_max_threads_.load(std::memory_order_relaxed);
  o.detect_sleeping = opt_detect_sleeping_.load(std::memory_order_relaxed);
  return o;
}

unsigned worker_pool::concurrency() const noexcept {
  const unsigned c = opt_concurrency_.load(std::memory_order_relaxed);
  return c != 0 ? c : cores();
}

std::chrono::microseconds worker_pool::threshold() const noexcept {
  const std::int64_t t = opt_threshold_us_.load(std::memory_order_relaxed);
  if (t != 0) return std::chrono::microseconds(t);
  return is_unbound(kind_) ? std::chrono::milliseconds(1) : std::chrono::milliseconds(10);
}

void worker_pool::kick_or_unwatch() noexcept {
  if (kick_pool_manager()) return;
  std::lock_guard lk(mu_);
  watched_ = false;
}

void worker_pool::nudge() noexcept {
  {
    std::lock_guard lk(mu_);
    if (waiting_ == 0) return;
    watched_ = true;
  }
  kick_or_unwatch();
}

bool worker_pool::may_run_more_locked() const noexcept { return nr_running_ < concurrency(); }

bool worker_pool::needs_look_locked() noexcept {
  // Tasks wait with no worker on the way: the manager must start one now if concurrency
  // allows (it may be asleep until a far look), or watch for stalls if it is not already.
  if (!dispatch_locked() || (watched_ && !may_run_more_locked())) return false;
  watched_ = true;
  return true;
}

bool worker_pool::dispatch_locked() noexcept {
  // Unbound pools wake idle workers whatever the number running (rule 41).
  const bool any = is_unbound(kind_);
  while (waiting_ > wakeups_ + nr_starting_ && nr_idle_ > 0 && (any || may_run_more_locked())) {
    --nr_idle_;
    ++wakeups_;
    ++nr_running_;
    idle_cv_.notify_one();
  }
  return waiting_ > wakeups_ + nr_starting_;
}

void worker_pool::submit(pool_task* t) noexcept {
  bool look = false;
  {
    std::lock_guard lk(mu_);
    t->next = nullptr;
    if (tail_ == nullptr) {
      head_ = t;
    } else {
      tail_->next = t;
    }
    tail_ = t;
    ++waiting_;
    look = needs_look_locked();
  }
  if (look) kick_or_unwatch();
}

unsigned worker_pool::manage(clock::time_point now, clock::time_point& next_look) noexcept {
  next_look = never;
  unsigned start = 0;
  bool saturated = false;
  unsigned limit = 0;
  {
    std::lock_guard lk(mu_);
    if (waiting_ == 0) {
      watched_ = false;
      return 0;
    }
    // Rule 42: a worker inside one item past the threshold, or asleep in it, no longer counts
    // as running.
    const auto thr = threshold();
    const bool detect_sleeping = opt_detect_sleeping_.load(std::memory_order_relaxed);
    bool all_moving = true;  // every running worker advanced since the last look
    for (pool_thread* th = threads_; th != nullptr; th = th->next) {
      if (!th->in_task || th->st.load(std::memory_order_relaxed) != pool_thread::state::running)
        continue;
      // Safety (relaxed): only compared with an earlier value of the same counter.
      const std::uint64_t p = th->progress.load(std::memory_order_relaxed);
      const std::int64_t cpu = thread_cpu_time_ns(th->cpu_clock);
      if (p != th->seen_progress || th->seen_at == clock::time_point{}) {
        th->seen_progress = p;
        th->seen_at = now;
        th->seen_cpu_ns = cpu;
        continue;
      }
      // Between items the worker is in wq's own bookkeeping: a wait there for the pool's or a
      // queue's mutex (its holder descheduled) is not an item sleeping, as the kernel's pool
      // lock, a spinlock, never counts as its worker sleeping. Counting it did start spare
      // workers on a busy 2-core machine (a round-robin over 10^5 queues: 4 workers, 64-362
      // stalls; the progress mark alone cannot tell it from a sleep inside an item).
      // Safety (relaxed): a stale depth delays or skips one look's judgement, no more.
      if (th->item_depth.load(std::memory_order_relaxed) == 0) continue;
      all_moving = false;
      if (past_threshold(*th, p, now - th->seen_at, cpu, thr) ||
          (detect_sleeping && now - th->seen_at >= sleep_after && cpu - th->seen_cpu_ns < 50'000 &&
           asleep_in_item(*th, p))) {
        // Past the threshold in one item, or asleep in it (no CPU time for a millisecond and
        // not runnable): no longer counted as running (rule 42).
        th->st.store(pool_thread::state::intensive, std::memory_order_relaxed);
        --nr_running_;
        ++nr_intensive_;
        ++stalls_;
      }
    }
    if (dispatch_locked()) {
      limit = opt_max_threads_.load(std::memory_order_relaxed);
      std::size_t want = waiting_ - (wakeups_ + nr_starting_);
      while (want > 0 && may_run_more_locked()) {
        if (nr_threads_ >= limit) {
          saturated = !saturation_reported_;
          saturation_reported_ = true;
          break;
        }
        ++nr_threads_;
        ++nr_starting_;
        ++nr_running_;
        ++start;
        --want;
      }
    }
    watched_ = waiting_ > wakeups_ + nr_starting_;
    // Look again in a millisecond; while every worker keeps advancing (a burst of short items),
    // back off up to half the threshold: each look wakes this thread and costs the workers.
    const clock::duration longest = std::max<clock::duration>(
        std::min<clock::duration>(thr / 2, 8 * sleep_after), std::chrono::microseconds(100));
    look_interval_ = !watched_ || !all_moving
                         ? std::min<clock::duration>(sleep_after, longest)
                         : std::min<clock::duration>(2 * look_interval_, longest);
    if (watched_) next_look = now + look_interval_;
  }
  if (saturated)
    report(errc::pool_saturated,
           "%s pool: %u workers (its max_threads) and items still wait for "
           "one; items that wait for each other beyond this cannot all run",
           to_string(kind_), limit);
  return start;
}

void worker_pool::start_worker() noexcept {
  pool_thread* th = nullptr;
  try {
    th = new pool_thread;
    th->pool = this;
    {
      std::lock_guard lk(mu_);
      th->number = next_number_++;
    }
    std::thread([this, th] { worker_main(th); }).detach();
    return;
  } catch (...) {
    delete th;
  }
  {
    std::lock_guard lk(mu_);
    --nr_threads_;
    --nr_starting_;
    --nr_running_;
    if (start_failed_) return;  // reported once per run of failures
    start_failed_ = true;
  }
  report(errc::worker_post_failed,
         "%s pool: cannot start a worker thread; items stay queued and "
         "the manager retries",
         to_string(kind_));
}

void worker_pool::worker_main(pool_thread* me) noexcept {
  tl_pool_thread = me;
  me->tid = static_cast<int>(::syscall(SYS_gettid));
  if (::pthread_getcpuclockid(::pthread_self(), &me->cpu_clock) != 0)
    me->cpu_clock = CLOCK_THREAD_CPUTIME_ID;  // unreadable from the manager: reads as its own
  char name[16];
  std::snprintf(name, sizeof name, "wq-%s-%u",
                kind_ == pool_kind::normal    ? "normal"
                : kind_ == pool_kind::highpri ? "highpri"
                : kind_ == pool_kind::unbound ? "unbound"
                                              : "unbhi",
                me->number);
  (void)::pthread_setname_np(::pthread_self(), name);
  if (is_highpri(kind_)) raise_priority();
  const bool unbound = is_unbound(kind_);
  std::unique_lock lk(mu_);
  --nr_starting_;
  ++threads_started_;
  start_failed_ = false;
  me->next = threads_;
  if (threads_ != nullptr) threads_->prev = me;
  threads_ = me;
  for (;;) {
    // Rule 42: a bound pool's worker keeps taking tasks while at most `concurrency` run
    // (itself included); unbound ones take whatever waits (rule 41).
    if (head_ != nullptr && (unbound || nr_running_ <= concurrency())) {
      pool_task* t = head_;
      head_ = t->next;
      if (head_ == nullptr) tail_ = nullptr;
      --waiting_;
      ++tasks_taken_;
      me->in_task = true;
      me->seen_at = {};
      lk.unlock();
      // Safety (relaxed): set before the first submit (set_task_entry). `t` may be resubmitted
      // or gone from here on; not touched again.
      task_entry.load(std::memory_order_relaxed)(t);
      lk.lock();
      me->in_task = false;
      if (me->st.load(std::memory_order_relaxed) == pool_thread::state::intensive) {
        me->st.store(pool_thread::state::running, std::memory_order_relaxed);
        --nr_intensive_;
        ++nr_running_;
      }
      continue;
    }
    me->st.store(pool_thread::state::idle, std::memory_order_relaxed);
    --nr_running_;
    ++nr_idle_;
    auto since = clock::now();
    for (;;) {
      if (wakeups_ > 0) {  // the waker moved this worker from idle to running
        --wakeups_;
        me->st.store(pool_thread::state::running, std::memory_order_relaxed);
        break;
      }
      // Workers beyond the concurrency (or a lowered max_threads) are extra.
      const bool extra =
          nr_threads_ > std::min(concurrency(), opt_max_threads_.load(std::memory_order_relaxed));
      if (!extra) {
        idle_cv_.wait(lk);
        since = clock::now();
        continue;
      }
      const auto deadline =
          since + std::chrono::milliseconds(opt_idle_ms_.load(std::memory_order_relaxed));
      if (clock::now() >= deadline) {
        // An extra worker idle for idle_timeout exits.
        --nr_idle_;
        --nr_threads_;
        ++threads_exited_;
        if (me->prev != nullptr)
          me->prev->next = me->next;
        else
          threads_ = me->next;
        if (me->next != nullptr) me->next->prev = me->prev;
        lk.unlock();
        tl_pool_thread = nullptr;
        delete me;
        return;
      }
      idle_cv_.wait_until(lk, deadline);
    }
  }
}

void worker_pool::enter_blocked(pool_thread* th) noexcept {
  if (th->region_depth++ > 0) return;
  bool look = false;
  {
    std::lock_guard lk(mu_);
    switch (th->st.load(std::memory_order_relaxed)) {
      case pool_thread::state::running: --nr_running_; break;
      case pool_thread::state::intensive: --nr_intensive_; break;
      default: break;
    }
    th->st.store(pool_thread::state::blocked, std::memory_order_relaxed);
    ++nr_blocked_;
    look = needs_look_locked();
  }
  if (look) kick_or_unwatch();
}

void worker_pool::leave_blocked(pool_thread* th) noexcept {
  if (--th->region_depth > 0) return;
  std::lock_guard lk(mu_);
  --nr_blocked_;
  if (th->long_item) {
    th->st.store(pool_thread::state::intensive, std::memory_order_relaxed);
    ++nr_intensive_;
  } else {
    th->st.store(pool_thread::state::running, std::memory_order_relaxed);
    ++nr_running_;
  }
}

void worker_pool::item_ended(pool_thread* th) noexcept {
  std::lock_guard lk(mu_);
  if (th->st.load(std::memory_order_relaxed) != pool_thread::state::intensive) return;
  th->st.store(pool_thread::state::running, std::memory_order_relaxed);
  --nr_intensive_;
  ++nr_running_;
}

void pool_item_begin(bool long_running) noexcept {
  pool_thread* th = tl_pool_thread;
  if (th == nullptr) return;
  // Safety (relaxed): only this thread writes them; the manager compares values.
  th->progress.store(th->progress.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  th->item_depth.store(th->item_depth.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  if (long_running && th->region_depth == 0) {
    // Rule 42: a CPU-intensive item does not count toward the pool's concurrency.
    th->long_item = true;
    worker_pool* p = th->pool;
    bool look = false;
    {
      std::lock_guard lk(p->mu_);
      if (th->st.load(std::memory_order_relaxed) == pool_thread::state::running) {
        --p->nr_running_;
        ++p->nr_intensive_;
        th->st.store(pool_thread::state::intensive, std::memory_order_relaxed);
      }
      look = p->needs_look_locked();
    }
    if (look) p->kick_or_unwatch();
  }
}

void pool_item_end() noexcept {
  pool_thread* th = tl_pool_thread;
  if (th == nullptr) return;
  if (th->region_depth > 0) {
    // A blocking_region outlived its item (a coroutine suspended inside it): close it, so this
    // worker, which goes on to other items, counts as running again.
    th->region_depth = 1;
    ++th->region_epoch;
    th->pool->leave_blocked(th);
    report(errc::blocking_region_misuse,
           "a blocking_region outlived the work item that opened "
           "it (held across a co_await, or kept): closed when the item ended");
  }
  th->progress.store(th->progress.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  th->item_depth.store(th->item_depth.load(std::memory_order_relaxed) - 1,
                       std::memory_order_relaxed);
  th->long_item = false;
  if (th->region_depth == 0 &&
      th->st.load(std::memory_order_relaxed) == pool_thread::state::intensive)
    th->pool->item_ended(th);
}

std::uint64_t worker_pool::progress_mark() const noexcept {
  std::lock_guard lk(mu_);
  std::uint64_t mark = tasks_taken_;
  // Safety (relaxed): only compared with an earlier mark.
  for (const pool_thread* th = threads_; th != nullptr; th = th->next)
    mark += th->progress.load(std::memory_order_relaxed);
  return mark;
}

pool_state worker_pool::state() const {
  pool_state s;
  s.kind = kind_;
  s.created = true;
  s.concurrency = concurrency();
  s.max_threads = opt_max_threads_.load(std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  s.threads = nr_threads_;
  s.running = nr_running_ - std::min(nr_running_, nr_starting_ + wakeups_);
  s.idle = nr_idle_ + wakeups_;
  s.blocked = nr_blocked_;
  s.cpu_intensive = nr_intensive_;
  s.starting = nr_starting_;
  s.waiting = waiting_;
  s.threads_started = threads_started_;
  s.threads_exited = threads_exited_;
  s.stalls = stalls_;
  return s;
}

void worker_pool::dump(std::string& out) const {
  const pool_state s = state();
  char line[256];
  std::snprintf(
      line, sizeof line,
      "pool %s: %u workers (%u running, %u idle, %u blocked, %u cpu-intensive, %u "
      "starting), %zu waiting; concurrency %u, max_threads %u, threshold %lld us; "
      "started %llu, exited %llu, stalls %llu\n",
      to_string(kind_), s.threads, s.running, s.idle, s.blocked, s.cpu_intensive, s.starting,
      s.waiting, s.concurrency, s.max_threads, static_cast<long long>(threshold().count()),
      static_cast<unsigned long long>(s.threads_started),
      static_cast<unsigned long long>(s.threads_exited), static_cast<unsigned long long>(s.stalls));
  out += line;
  std::lock_guard lk(mu_);
  const auto now = clock::now();
  for (const pool_thread* th = threads_; th != nullptr; th = th->next) {
    const char* st = "running";
    switch (th->st.load(std::memory_order_relaxed)) {
      case pool_thread::state::idle: st = "idle"; break;
      case pool_thread::state::blocked: st = "blocked"; break;
      case pool_thread::state::intensive: st = "cpu-intensive"; break;
      default: break;
    }
    if (th->in_task && th->seen_at != clock::time_point{}) {
      std::snprintf(
          line, sizeof line, "  worker %u: %s (same item for >= %lld ms)\n", th->number, st,
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(now - th->seen_at).count()));
    } else {
      std::snprintf(line, sizeof line, "  worker %u: %s\n", th->number, st);
    }
    out += line;
  }
}

}  // namespace wq::detail
