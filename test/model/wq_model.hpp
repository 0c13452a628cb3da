// SPDX-License-Identifier: BSL-1.0
// The deterministic reference model of wq (issue 6, items 1 and 6): a sequential model of item
// states (idle, queued on q, armed for q, disable count, run count) and an interpreter that
// applies the same operations to real queues and compares every return value with the model.
// Shared by test/model_test.cpp (seeded random sequences) and fuzz/wq_fuzz.cpp (byte input).
//
// Determinism: every queue is paused (rule 45) except during a "run step", so queued items
// start only when the driver says so. A run step resumes one queue, waits with flush() (rule
// 26) until everything queued on it has run, and pauses it again; the model then marks exactly
// those items as run (in queueing order on ordered queues, rule 39). Delayed items are armed
// for an hour, so their timers never fire; mod_delayed_work(.., 0) (rule 20) and
// flush_delayed_work (rule 24) are how they get queued. Blocking calls that must wait for a
// run (flush_work, flush_delayed_work of a pending item) are made on a helper thread while the
// driver resumes the queue. Nothing runs outside run steps, so cancel_sync and disable_sync
// never wait and their results are exact.
//
// One result is not exactly predictable through the public API: flush_work of a *queued* item
// (rule 23) returns true if it found the instance still pending or running, and the driver
// cannot observe the moment flush_work has looked, so the worker may (rarely) finish the item
// first and flush_work then correctly returns false. Such a false is accepted only if the
// instance had finished when flush_work returned, and counted in `result::flush_races`.
//
// Thread safety: a `world` is driven by one thread.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include <wq/cancel.hpp>
#include <wq/delayed_work.hpp>
#include <wq/diagnostics.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/queue_status.hpp>
#include <wq/workqueue.hpp>

#include "model/model_items.hpp"

namespace wq_model {

// ---- operations ------------------------------------------------------------------------------

enum class op_kind : std::uint8_t {
  queue,               // queue_work / enqueue
  queue_delayed,       // queue_delayed_work / enqueue_delayed, 1 hour
  queue_delayed_zero,  // the same with delay 0: queued at once (rule 19)
  mod_now,             // mod_delayed_work(.., 0)
  mod_later,           // mod_delayed_work(.., 1 hour)
  cancel,              // cancel_delayed_work (alt: typed cancel_work<&T::d, P>)
  cancel_sync,         // cancel_delayed_work_sync (alt: typed)
  disable,             // disable_delayed_work
  disable_sync,        // disable_delayed_work_sync
  enable,              // enable_delayed_work
  enable_and_queue,    // enable_and_queue_work
  flush_work,          // flush_work(&dw->work)
  flush_delayed,       // flush_delayed_work
  flush_queue,         // workqueue::flush, a run step
  drain_queue,         // workqueue::drain, a run step
  recreate_queue,      // destroy the queue (rule 50) and create a new one in its place
  count_
};

inline const char* to_string(op_kind k) noexcept {
  static constexpr const char* names[] = {
      "queue",         "queue_delayed", "queue_delayed_zero", "mod_now",
      "mod_later",     "cancel",        "cancel_sync",        "disable",
      "disable_sync",  "enable",        "enable_and_queue",   "flush_work",
      "flush_delayed", "flush_queue",   "drain_queue",        "recreate_queue"};
  const auto i = static_cast<std::size_t>(k);
  return i < std::size(names) ? names[i] : "?";
}

struct op {
  op_kind kind = op_kind::queue;
  std::uint8_t item = 0;
  std::uint8_t queue = 0;
  bool alt = false;  // the typed form of cancel / cancel_sync (ignored by other ops)
};

inline std::string to_string(const op& o) {
  const bool typed = o.alt && (o.kind == op_kind::cancel || o.kind == op_kind::cancel_sync);
  std::string s = to_string(o.kind);
  s += "(item ";
  s += std::to_string(o.item);
  s += ", q";
  s += std::to_string(o.queue);
  s += typed ? ", typed)" : ")";
  return s;
}

/// The most ops one fuzz input (or corpus file) is run for.
inline constexpr std::uint64_t fuzz_max_ops = 512;

/// Sizes of a deterministic world.
struct det_config {
  int items = 9;   // item i has kind i % 3 (ref, shared, c)
  int queues = 4;  // q0 pool, q1 unbound max_active 2, q2 ordered, q3 ordered on a user strand
  bool check_stats = true;  // also check queue_stats against the model after every op
};

/// Decodes ops from bytes (2 bytes each), for the fuzzer and for replaying.
class byte_ops {
 public:
  byte_ops(const std::uint8_t* data, std::size_t size, const det_config& cfg)
      : p_(data), end_(data + size), cfg_(cfg) {}
  std::optional<op> next() {
    if (end_ - p_ < 2) return std::nullopt;
    const unsigned a = *p_++;
    const unsigned b = *p_++;
    op o;
    o.kind = static_cast<op_kind>(a % static_cast<unsigned>(op_kind::count_));
    // recreate is expensive (threads): only for a few byte values.
    if (o.kind == op_kind::recreate_queue && (a / static_cast<unsigned>(op_kind::count_)) % 4 != 0)
      o.kind = op_kind::flush_queue;
    const auto items = static_cast<unsigned>(cfg_.items);
    const auto queues = static_cast<unsigned>(cfg_.queues);
    o.item = static_cast<std::uint8_t>(b % items);
    o.queue = static_cast<std::uint8_t>((b / items) % queues);
    o.alt = ((b / (items * queues)) & 1u) != 0;
    return o;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  det_config cfg_;
};

/// Generates weighted random ops from a seeded PRNG.
class random_ops {
 public:
  random_ops(std::uint64_t seed, const det_config& cfg) : rng_(seed), cfg_(cfg) {
    // Weights (per mille-ish); run steps are rarer because they cost thread wake-ups.
    static constexpr int w[] = {140, 100, 30, 70, 70, 70, 50, 35, 25, 60, 35, 40, 35, 80, 15, 2};
    static_assert(std::size(w) == static_cast<std::size_t>(op_kind::count_));
    dist_ = std::discrete_distribution<int>(std::begin(w), std::end(w));
  }
  op next() {
    op o;
    o.kind = static_cast<op_kind>(dist_(rng_));
    o.item = static_cast<std::uint8_t>(rng_() % static_cast<unsigned>(cfg_.items));
    o.queue = static_cast<std::uint8_t>(rng_() % static_cast<unsigned>(cfg_.queues));
    o.alt = (rng_() & 1u) != 0;
    return o;
  }

 private:
  std::mt19937_64 rng_;
  det_config cfg_;
  std::discrete_distribution<int> dist_;
};

// ---- a one-job helper thread -----------------------------------------------------------------

/// Runs submitted jobs one at a time on its own thread (for calls that block until the driver
/// lets a queue run).
class helper_thread {
 public:
  helper_thread() : thread_([this] { loop(); }) {}
  ~helper_thread() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  helper_thread(const helper_thread&) = delete;
  helper_thread& operator=(const helper_thread&) = delete;

  template <class F>
  auto submit(F f) -> std::future<decltype(f())> {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto fut = task->get_future();
    {
      std::lock_guard lk(mu_);
      jobs_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_all();
    return fut;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

// ---- the model ---------------------------------------------------------------------------------

enum class mstate : std::uint8_t { idle, queued, armed };

struct model_item {
  mstate state = mstate::idle;
  int queue = -1;        // the queue it is queued or armed on
  unsigned disable = 0;  // disable count
  int runs = 0;          // completed runs
  bool bound = false;    // an owning item has typed ops (it was queued or armed once)
};

struct model_queue {
  std::vector<int> order;  // items queued on it, in queueing order
  bool ordered = false;
  int max_active = 1;
};

/// Diagnostics (wq/diagnostics.hpp) the model expects, per code.
struct diag_map {
  std::vector<std::pair<wq::errc, int>> v;
  int& operator[](wq::errc e) {
    for (auto& p : v)
      if (p.first == e) return p.second;
    v.emplace_back(e, 0);
    return v.back().second;
  }
  [[nodiscard]] std::vector<std::pair<wq::errc, int>>::const_iterator begin() const {
    return v.begin();
  }
  [[nodiscard]] std::vector<std::pair<wq::errc, int>>::const_iterator end() const {
    return v.end();
  }
};

/// The result of running a sequence.
struct result {
  bool ok = true;
  std::string message;    // the mismatch, with the last ops
  std::uint64_t ops = 0;  // ops applied
  std::uint64_t flush_races = 0;
  std::uint64_t runs = 0;  // work function runs observed
};

/// Real queues and items driven in lockstep with the model.
class world {
 public:
  explicit world(const det_config& cfg) : cfg_(cfg) {
    diagnostic_counter::reset();  // the handler was installed by diagnostics_
    mq_.resize(static_cast<std::size_t>(cfg_.queues));
    queues_.resize(static_cast<std::size_t>(cfg_.queues));
    probes_.resize(static_cast<std::size_t>(cfg_.queues));
    for (int i = 0; i < cfg_.queues; ++i) make_queue(i);
    mi_.resize(static_cast<std::size_t>(cfg_.items));
    for (int i = 0; i < cfg_.items; ++i)
      items_.push_back(
          std::make_unique<item_slot>(i, static_cast<item_kind>(i % 3), log_, destroyed_));
  }
  ~world() {
    // On a mismatch the queues may still hold items: destroy them (which drains) first.
    for (auto& q : queues_)
      if (q) (void)q->destroy();
    queues_.clear();
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  /// Applies `o` to the real queues and to the model; returns a mismatch description or "".
  std::string apply(const op& o) {
    err_.clear();
    const int i = o.item % cfg_.items;
    const int qi = o.queue % cfg_.queues;
    item_slot& it = *items_[static_cast<std::size_t>(i)];
    model_item& m = mi_[static_cast<std::size_t>(i)];
    wq::workqueue& q = *queues_[static_cast<std::size_t>(qi)];
    using wq::queue_status;
    using namespace std::chrono_literals;
    switch (o.kind) {
      case op_kind::queue:
      case op_kind::queue_delayed:
      case op_kind::queue_delayed_zero: {
        const bool armed = o.kind == op_kind::queue_delayed;
        const queue_status want = m.disable > 0 ? queue_status::disabled
                                  : pending(m)  ? queue_status::already_pending
                                                : queue_status::queued;
        const std::chrono::nanoseconds delay = o.kind == op_kind::queue ? -1ns
                                               : armed ? std::chrono::nanoseconds(1h)
                                                       : 0ns;
        const queue_outcome got = it.queue(q, delay);
        if (want == queue_status::queued) set_pending(i, qi, armed);
        expect(got.status == want, "status " + std::string(wq::to_string(got.status)) + ", model " +
                                       wq::to_string(want));
        expect(got.handed_back_ok, "pointer not handed back / not taken");
        break;
      }
      case op_kind::mod_now:
      case op_kind::mod_later: {
        const bool armed = o.kind == op_kind::mod_later;
        const bool was = pending(m);
        queue_status want = queue_status::queued;
        if (m.disable > 0) {
          want = queue_status::disabled;
          set_idle(i);  // rule 20d: cancelled, not re-queued
        } else {
          set_idle(i);
          set_pending(i, qi, armed);
        }
        const mod_outcome got =
            it.mod(q, armed ? std::chrono::nanoseconds(1h) : std::chrono::nanoseconds(0));
        expect(got.was_pending == was,
               "was_pending " + std::to_string(got.was_pending) + ", model " + std::to_string(was));
        if (got.status)
          expect(*got.status == want, "status " + std::string(wq::to_string(*got.status)) +
                                          ", model " + wq::to_string(want));
        expect(got.handed_back_ok, "pointer not handed back / not taken");
        break;
      }
      case op_kind::cancel:
      case op_kind::cancel_sync: {
        const bool was = pending(m);
        set_idle(i);
        bool back_ok = true;
        const bool got = it.cancel(o.kind == op_kind::cancel_sync, o.alt, back_ok);
        expect(got == was, "returned " + std::to_string(got) + ", model " + std::to_string(was));
        expect(back_ok, "typed cancel handed back another pointer");
        if (o.kind == op_kind::cancel_sync) expect_quiet(it);
        break;
      }
      case op_kind::disable:
      case op_kind::disable_sync: {
        const bool was = pending(m);
        set_idle(i);
        ++m.disable;
        const bool got = o.kind == op_kind::disable ? wq::disable_delayed_work(it.work())
                                                    : wq::disable_delayed_work_sync(it.work());
        expect(got == was, "returned " + std::to_string(got) + ", model " + std::to_string(was));
        if (o.kind == op_kind::disable_sync) expect_quiet(it);
        break;
      }
      case op_kind::enable: {
        const bool want = model_enable(m);
        const bool got = wq::enable_delayed_work(it.work());
        expect(got == want, "returned " + std::to_string(got) + ", model " + std::to_string(want));
        break;
      }
      case op_kind::enable_and_queue: {
        bool want = false;
        if (it.owning() && m.bound) {
          ++diag_[wq::errc::untyped_on_owning_item];
          (void)model_enable(m);
        } else if (model_enable(m)) {
          if (it.owning()) {
            ++diag_[wq::errc::no_work_function];  // never bound: queue() refuses it
          } else {
            want = true;
            if (!pending(m)) set_pending(i, qi, false);
          }
        }
        const bool got = wq::enable_and_queue_work(q, it.work());
        expect(got == want, "returned " + std::to_string(got) + ", model " + std::to_string(want));
        break;
      }
      case op_kind::flush_work:
      case op_kind::flush_delayed: {
        const bool delayed = o.kind == op_kind::flush_delayed;
        if (m.state == mstate::idle || (m.state == mstate::armed && !delayed)) {
          // Rule 23: idle, or armed and not fired: false at once. Rule 24: idle: false.
          const bool got = delayed ? wq::flush_delayed_work(it.work()) : wq::flush_work(it.work());
          expect(!got, "returned true for an idle/armed item, model false");
          break;
        }
        const bool exact = m.state == mstate::armed;  // flush_delayed_work fires and waits
        const int target = m.queue;
        if (m.state == mstate::armed) {
          set_idle(i);
          set_pending(i, target, false);  // rule 24: queued now on the recorded queue
        }
        const int runs_before = it.probe().runs.load();
        std::promise<void> entering;
        auto entered = entering.get_future();
        auto fut = helper_.submit([&] {
          entering.set_value();
          const bool r = delayed ? wq::flush_delayed_work(it.work()) : wq::flush_work(it.work());
          return std::pair<bool, int>(r, it.probe().runs.load());
        });
        entered.wait();
        wq::workqueue& tq = *queues_[static_cast<std::size_t>(target)];
        tq.resume();
        const auto [got, runs_after] = fut.get();
        const std::error_code ec = tq.flush();
        tq.pause();
        expect(!ec, "flush() of the run step failed: " + ec.message());
        expect(runs_after == runs_before + 1, "when flush returned the item had run " +
                                                  std::to_string(runs_after - runs_before) +
                                                  " more times, want 1 (rule 23)");
        if (!got) {
          if (exact || runs_after != runs_before + 1) {
            expect(false, "returned false for a pending item, model true (rules 23, 24)");
          } else {
            ++res_flush_races_;
          }
        }
        run_model_queue(target);
        break;
      }
      case op_kind::flush_queue: {
        q.resume();
        const std::error_code ec = q.flush();
        q.pause();
        expect(!ec, "flush() failed: " + ec.message());
        run_model_queue(qi);
        break;
      }
      case op_kind::drain_queue: {
        const std::error_code ec = q.drain();  // resumes the paused queue itself
        q.pause();
        expect(!ec, "drain() failed: " + ec.message());
        run_model_queue(qi);
        break;
      }
      case op_kind::recreate_queue: {
        destroy_queue(qi);
        if (err_.empty()) make_queue(qi);
        break;
      }
      case op_kind::count_: break;
    }
    if (err_.empty()) check_all();
    return err_;
  }

  /// Destroys every queue (rule 50) and checks that the items are left idle and every owning
  /// reference came back; returns a mismatch description or "".
  std::string finish() {
    err_.clear();
    for (int qi = 0; qi < cfg_.queues && err_.empty(); ++qi) destroy_queue(qi);
    if (err_.empty()) check_all();
    if (!err_.empty()) return err_;
    int owning = 0;
    for (auto& it : items_) {
      owning += it->owning() ? 1 : 0;
      it->reset();
    }
    expect(destroyed_.load() == owning,
           std::to_string(destroyed_.load()) + " owned objects destroyed, want " +
               std::to_string(owning) + " (references released exactly once)");
    if (log_.any()) expect(false, "violations:\n" + log_.text());
    return err_;
  }

  [[nodiscard]] std::uint64_t flush_races() const noexcept { return res_flush_races_; }
  [[nodiscard]] std::uint64_t runs() const noexcept { return total_runs_; }

 private:
  static bool pending(const model_item& m) noexcept { return m.state != mstate::idle; }

  void expect(bool ok, const std::string& what) {
    if (!ok && err_.empty()) err_ = what;
  }

  // Enable in the model (rule 34); an underflow is reported and counts as "reached zero".
  bool model_enable(model_item& m) {
    if (m.disable == 0) {
      ++diag_[wq::errc::disable_count_underflow];
      return true;
    }
    return --m.disable == 0;
  }

  void set_pending(int i, int qi, bool armed) {
    model_item& m = mi_[static_cast<std::size_t>(i)];
    m.state = armed ? mstate::armed : mstate::queued;
    m.queue = qi;
    m.bound = true;
    if (!armed) mq_[static_cast<std::size_t>(qi)].order.push_back(i);
  }

  void set_idle(int i) {
    model_item& m = mi_[static_cast<std::size_t>(i)];
    if (m.state == mstate::queued) std::erase(mq_[static_cast<std::size_t>(m.queue)].order, i);
    m.state = mstate::idle;
  }

  // After a run step of queue qi: everything the model had queued there ran once, in order
  // on ordered queues.
  void run_model_queue(int qi) {
    model_queue& mq = mq_[static_cast<std::size_t>(qi)];
    std::vector<int> got = probes_[static_cast<std::size_t>(qi)]->take_runs();
    std::vector<int> want = mq.order;
    for (int i : mq.order) {
      ++mi_[static_cast<std::size_t>(i)].runs;
      mi_[static_cast<std::size_t>(i)].state = mstate::idle;
    }
    mq.order.clear();
    total_runs_ += got.size();
    if (!mq.ordered) {
      std::sort(got.begin(), got.end());
      std::sort(want.begin(), want.end());
    }
    if (got != want)
      expect(false, std::string("queue ") + std::to_string(qi) + " ran " + list(got) + ", model " +
                        list(want) + (mq.ordered ? " (in order, rule 39)" : " (any order)"));
  }

  static std::string list(const std::vector<int>& v) {
    std::string s = "[";
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (k != 0) s += ' ';
      s += std::to_string(v[k]);
    }
    s += ']';
    return s;
  }

  // After a cancel_sync / disable_sync: nothing of the item runs now.
  void expect_quiet(item_slot& it) {
    for (auto& r : it.probe().running_on)
      expect(r.load() == 0, "item still running after a _sync cancel returned (rule 29)");
  }

  void make_queue(int qi) {
    const auto k = static_cast<std::size_t>(qi);
    model_queue& mq = mq_[k];
    std::unique_ptr<wq::workqueue> q;
    switch (qi % 4) {
      case 0: q = std::make_unique<wq::workqueue>("m-pool", wq::queue_options{.threads = 2}); break;
      case 1:
        q = std::make_unique<wq::workqueue>(
            "m-max2",
            wq::queue_options{.flags = wq::queue_flags::unbound, .max_active = 2, .threads = 3});
        break;
      case 2: q = std::make_unique<wq::ordered_workqueue>("m-ordered"); break;
      default:
        q = std::make_unique<wq::ordered_workqueue>(user_pool_.get_executor(), "m-strand");
        break;
    }
    mq.ordered = q->ordered();
    mq.max_active = q->max_active();
    mq.order.clear();
    if (probes_[k]) retired_probes_.push_back(std::move(probes_[k]));
    probes_[k] = std::make_unique<queue_probe>(qi, mq.max_active, log_);
    q->set_observer(probes_[k].get());
    q->pause();
    queues_[k] = std::move(q);
  }

  // Rule 50: queued items run, armed items targeting the queue are cancelled (and reported).
  void destroy_queue(int qi) {
    const auto k = static_cast<std::size_t>(qi);
    int armed = 0;
    for (int i = 0; i < cfg_.items; ++i) {
      model_item& m = mi_[static_cast<std::size_t>(i)];
      if (m.state == mstate::armed && m.queue == qi) {
        ++armed;
        m.state = mstate::idle;
      }
    }
    if (armed > 0) ++diag_[wq::errc::armed_items_cancelled];
    const std::error_code ec = queues_[k]->destroy();
    probes_[k]->destroyed.store(true);
    expect(!ec, "destroy() failed: " + ec.message());
    expect(queues_[k]->cancelled_on_destroy() == static_cast<std::uint64_t>(armed),
           "destroy cancelled " + std::to_string(queues_[k]->cancelled_on_destroy()) +
               " armed items, model " + std::to_string(armed));
    run_model_queue(qi);
    queues_[k].reset();
  }

  // Compares every item, every queue's counters and the diagnostics with the model.
  void check_all() {
    for (int i = 0; i < cfg_.items; ++i) {
      item_slot& it = *items_[static_cast<std::size_t>(i)];
      const model_item& m = mi_[static_cast<std::size_t>(i)];
      const std::string who = "item " + std::to_string(i) + " (" + to_string(it.kind()) + "): ";
      expect(it.probe().runs.load() == m.runs, who + "ran " +
                                                   std::to_string(it.probe().runs.load()) +
                                                   " times, model " + std::to_string(m.runs));
      expect(it.work().is_pending() == pending(m), who + "is_pending " +
                                                       std::to_string(it.work().is_pending()) +
                                                       ", model " + std::to_string(pending(m)));
      expect(it.work().disable_count() == m.disable, who + "disable_count " +
                                                         std::to_string(it.work().disable_count()) +
                                                         ", model " + std::to_string(m.disable));
      const long want_refs = it.owning() && pending(m) ? 1 : 0;
      expect(it.extra_refs() == want_refs, who + "queue holds " + std::to_string(it.extra_refs()) +
                                               " references, model " + std::to_string(want_refs));
    }
    for (const auto& [code, n] : diag_)
      expect(diagnostic_counter::count(code) == n,
             std::string("diagnostic ") + wq::make_error_code(code).message() + " reported " +
                 std::to_string(diagnostic_counter::count(code)) + " times, model " +
                 std::to_string(n));
    int want_total = 0;
    for (const auto& [code, n] : diag_) want_total += n;
    expect(diagnostic_counter::total() == want_total,
           "unexpected diagnostics: " + std::to_string(diagnostic_counter::total()) +
               " reported, model " + std::to_string(want_total));
    if (cfg_.check_stats) {
      for (int qi = 0; qi < cfg_.queues; ++qi) {
        if (!queues_[static_cast<std::size_t>(qi)]) continue;
        const wq::queue_stats s = queues_[static_cast<std::size_t>(qi)]->stats();
        std::uint64_t queued = 0;
        std::uint64_t armed = 0;
        for (const model_item& m : mi_) {
          if (m.queue != qi) continue;
          queued += m.state == mstate::queued ? 1 : 0;
          armed += m.state == mstate::armed ? 1 : 0;
        }
        const std::string who = "queue " + std::to_string(qi) + " stats: ";
        expect(s.in_flight == queued && s.armed == armed && s.running == 0,
               who + "in_flight " + std::to_string(s.in_flight) + " armed " +
                   std::to_string(s.armed) + " running " + std::to_string(s.running) + ", model " +
                   std::to_string(queued) + " / " + std::to_string(armed) + " / 0");
        expect(s.queued == s.started + s.cancelled + s.armed + s.in_flight,
               who + "queued " + std::to_string(s.queued) + " != started " +
                   std::to_string(s.started) + " + cancelled " + std::to_string(s.cancelled) +
                   " + armed " + std::to_string(s.armed) + " + in_flight " +
                   std::to_string(s.in_flight) + " (stats.hpp)");
      }
    }
    if (log_.any()) expect(false, "violations:\n" + log_.text());
  }

  diagnostic_counter diagnostics_;  // misuse is predicted by the model, not fatal
  det_config cfg_;
  violation_log log_;
  std::atomic<int> destroyed_{0};
  boost::asio::thread_pool user_pool_{2};  // under the strand queue; outlives it
  std::vector<std::unique_ptr<queue_probe>> probes_;
  std::vector<std::unique_ptr<queue_probe>> retired_probes_;
  std::vector<std::unique_ptr<wq::workqueue>> queues_;  // destroyed before the pool above
  std::vector<std::unique_ptr<item_slot>> items_;
  std::vector<model_item> mi_;
  std::vector<model_queue> mq_;
  diag_map diag_;  // diagnostics the model expects so far
  helper_thread helper_;
  std::string err_;
  std::uint64_t res_flush_races_ = 0;
  std::uint64_t total_runs_ = 0;
};

/// Runs ops from `next` (returns std::nullopt at the end, or after `max_ops`) on a fresh world,
/// then destroys it. `header` starts the failure message (seed, how to replay).
template <class Next>
result run_sequence(const det_config& cfg, Next&& next, std::uint64_t max_ops,
                    const std::string& header) {
  result res;
  std::deque<op> recent;
  auto fail = [&](const std::string& what, bool at_finish) {
    res.ok = false;
    std::ostringstream os;
    os << header << "\n";
    if (at_finish) {
      os << "mismatch while destroying the queues after op " << res.ops << ": " << what << "\n";
    } else {
      os << "mismatch at op #" << res.ops << " " << to_string(recent.back()) << ": " << what
         << "\n";
    }
    os << "last ops (oldest first):\n";
    std::uint64_t first = res.ops + (at_finish ? 0 : 1) - recent.size();
    for (const op& o : recent) os << "  #" << first++ << " " << to_string(o) << "\n";
    res.message = os.str();
  };
  {
    world w(cfg);
    while (res.ops < max_ops) {
      std::optional<op> o = next();
      if (!o) break;
      recent.push_back(*o);
      if (recent.size() > 24) recent.pop_front();
      const std::string err = w.apply(*o);
      if (!err.empty()) {
        fail(err, false);
        res.flush_races = w.flush_races();
        return res;
      }
      ++res.ops;
    }
    const std::string err = w.finish();
    if (!err.empty()) fail(err, true);
    res.flush_races = w.flush_races();
    res.runs = w.runs();
  }
  return res;
}

}  // namespace wq_model
