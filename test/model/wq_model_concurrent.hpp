// SPDX-License-Identifier: BSL-1.0
// The concurrent half of the model-based test: several driver threads issue seeded random
// operations on shared items over a pool queue, an unbound max_active 2 queue and an ordered
// queue with real thread pools, while some work functions re-queue themselves. Return values
// are not predicted; these invariants are checked in every interleaving:
//   - an item never runs concurrently with itself on one queue (rules 9-11) and a queue never
//     runs more than max_active items at once (rules 37, 39): in the work functions;
//   - the ordered queue runs its items in queueing order (rule 39): only driver 0 queues on it,
//     logging each successful queueing; the run order must be a subsequence of that log;
//   - exactly once: for every item, successful queueings (including self-requeues and
//     mod_delayed_work from idle) minus successful cancellations (cancel, cancel_sync,
//     disable, mod of a disabled item; a mod that replaces a pending instance counts as both)
//     equals the runs, after a final flush_delayed_work of every item and a drain of every
//     queue (rules 1, 2, 20, 28, 31, 33);
//   - nothing runs after cancel_sync/disable_sync returns until the item is queued again
//     (rules 29, 32), checked for the driver that owns the item (only it queues the item);
//     likewise after that driver's flush_work of an ordered-queue item, which never re-queues
//     itself (rule 23). is_pending() is not checked there: another driver's cancel owns the
//     PENDING bit for a moment even of an idle item (as the kernel's grab does);
//   - nothing runs on a queue after its destroy() returned (rule 50);
//   - every function posted to a queue's executor runs exactly once, within max_active, also
//     when it arrives while another driver drains that queue (held until the drain ends, D2);
//   - every owning reference the queues took is released exactly once: the intrusive and
//     shared counts return to the driver's own, and every object is destroyed exactly once.
//
// Thread safety: run_concurrent is called by one thread; it starts and joins the drivers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <wq/cancel.hpp>
#include <wq/delayed_work.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/workqueue.hpp>

#include <boost/asio/post.hpp>

#include "model/model_items.hpp"

namespace wq_model {

struct conc_config {
  int threads = 3;
  std::uint64_t ops_per_thread = 5000;
  std::uint64_t seed = 1;
  int items_per_thread = 5;  // free items each driver owns (queues on the pool queues)
  int ordered_items = 4;     // items of the ordered queue, owned by driver 0
  int requeue_budget = 40;   // self-requeues each free item may do over the whole run
  // Drivers stop early once this much time has passed (zero: no limit), so that a machine
  // busy with other work cannot stretch the run past its test's timeout: each operation
  // yields the CPU, and on a CPU shared with a busy thread a yield can cost a time slice.
  std::chrono::milliseconds time_limit{0};
};

struct conc_result {
  bool ok = true;
  std::string message;
  std::uint64_t ops = 0;
  std::uint64_t runs = 0;
  std::uint64_t instances = 0;
  std::uint64_t cancels = 0;
};

namespace detail {

class conc_world {
 public:
  static constexpr int pool_q = 0;
  static constexpr int max2_q = 1;
  static constexpr int ordered_q = 2;

  explicit conc_world(const conc_config& cfg) : cfg_(cfg) {
    queues_.push_back(std::make_unique<wq::workqueue>("c-pool", wq::queue_options{.threads = 3}));
    queues_.push_back(std::make_unique<wq::workqueue>(
        "c-max2",
        wq::queue_options{.flags = wq::queue_flags::unbound, .max_active = 2, .threads = 3}));
    queues_.push_back(std::make_unique<wq::ordered_workqueue>("c-ordered"));
    for (int k = 0; k < 3; ++k) {
      probes_.push_back(std::make_unique<queue_probe>(
          k, queues_[static_cast<std::size_t>(k)]->max_active(), log_));
      queues_[static_cast<std::size_t>(k)]->set_observer(probes_.back().get());
    }
    const int n = cfg_.ordered_items + cfg_.threads * cfg_.items_per_thread;
    counts_ = std::make_unique<item_counts[]>(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      items_.push_back(
          std::make_unique<item_slot>(i, static_cast<item_kind>(i % 3), log_, destroyed_));
      item_probe& p = items_.back()->probe();
      p.yield_in_run = i % 2 == 1;
      if (!is_ordered_item(i)) {
        p.requeues_left.store(cfg_.requeue_budget);
        p.requeue = &requeue_hook;
        p.requeue_ctx = this;
      }
    }
  }
  ~conc_world() {
    for (auto& q : queues_)
      if (q) (void)q->destroy();
  }
  conc_world(const conc_world&) = delete;
  conc_world& operator=(const conc_world&) = delete;

  [[nodiscard]] bool is_ordered_item(int i) const noexcept { return i < cfg_.ordered_items; }
  [[nodiscard]] int owner(int i) const noexcept {
    return is_ordered_item(i) ? 0 : (i - cfg_.ordered_items) / cfg_.items_per_thread;
  }
  [[nodiscard]] int item_count() const noexcept { return static_cast<int>(items_.size()); }

  conc_result run() {
    std::vector<std::thread> drivers;
    std::vector<std::uint64_t> done(static_cast<std::size_t>(cfg_.threads), 0);
    for (int t = 0; t < cfg_.threads; ++t)
      drivers.emplace_back([this, t, &done] { done[static_cast<std::size_t>(t)] = drive(t); });
    for (auto& d : drivers) d.join();
    conc_result r;
    for (std::uint64_t d : done) r.ops += d;
    finish(r);
    return r;
  }

 private:
  struct item_counts {
    std::atomic<std::uint64_t> instances{0};
    std::atomic<std::uint64_t> cancels{0};
    std::atomic<std::uint64_t> grabs_started{0};  // cancel/disable calls begun by any driver
    std::atomic<int> grabs_active{0};             // ... and not yet returned
  };

  /// Brackets a cancel or disable call of item i (see the flush_work check).
  class grab_scope {
   public:
    explicit grab_scope(item_counts& c) : c_(c) {
      c_.grabs_active.fetch_add(1);
      c_.grabs_started.fetch_add(1);
    }
    ~grab_scope() { c_.grabs_active.fetch_sub(1); }
    grab_scope(const grab_scope&) = delete;
    grab_scope& operator=(const grab_scope&) = delete;

   private:
    item_counts& c_;
  };

  static void requeue_hook(item_probe& it, queue_probe& on, void*) noexcept {
    auto& w = *static_cast<conc_world*>(it.requeue_ctx);
    item_slot& slot = *w.items_[static_cast<std::size_t>(it.index)];
    wq::workqueue& q = *w.queues_[static_cast<std::size_t>(on.index)];
    // Chained queueing from the item's own run: allowed even while the queue drains (rule 49).
    const queue_outcome got = slot.queue(q, std::chrono::nanoseconds(-1));
    if (got.status == wq::queue_status::queued) w.counts(it.index).instances.fetch_add(1);
    if (!got.handed_back_ok) w.log_.add("self-requeue: pointer not handed back / not taken");
  }

  item_counts& counts(int i) noexcept { return counts_[static_cast<std::size_t>(i)]; }

  void fail(const std::string& what) { log_.add(what); }

  std::uint64_t drive(int t) {
    std::mt19937_64 rng(cfg_.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(t));
    static constexpr int weights[] = {25, 15, 12, 12, 6, 5, 3, 8, 5, 4, 4, 1, 4};
    std::discrete_distribution<int> pick(std::begin(weights), std::end(weights));
    std::vector<int> own;
    for (int i = 0; i < item_count(); ++i)
      if (owner(i) == t) own.push_back(i);
    std::vector<int> disables(items_.size(), 0);  // this driver's disables, undone at the end
    std::uint64_t ops = 0;
    using namespace std::chrono_literals;
    const auto stop_at = std::chrono::steady_clock::now() + cfg_.time_limit;
    for (; ops < cfg_.ops_per_thread && !log_.any(); ++ops) {
      if (cfg_.time_limit.count() != 0 && ops % 256 == 0 &&
          std::chrono::steady_clock::now() >= stop_at)
        break;
      const int kind = pick(rng);
      const int any = static_cast<int>(rng() % items_.size());
      const int mine = own[rng() % own.size()];
      item_slot& any_it = *items_[static_cast<std::size_t>(any)];
      item_slot& my_it = *items_[static_cast<std::size_t>(mine)];
      const bool my_ordered = is_ordered_item(mine);
      wq::workqueue& my_q = *queues_[static_cast<std::size_t>(my_ordered          ? ordered_q
                                                              : (rng() & 1u) != 0 ? pool_q
                                                                                  : max2_q)];
      switch (kind) {
        case 0:    // queue now
        case 1: {  // queue after a short delay (ordered items: now; rule 39 order is by firing)
          std::chrono::nanoseconds delay(-1);
          if (kind == 1 && !my_ordered) {
            static constexpr std::chrono::nanoseconds delays[] = {0ns, 20us, 100us, 500us};
            delay = delays[rng() % 4];
          }
          my_it.probe().quiet.store(false);
          const queue_outcome got = my_it.queue(my_q, delay);
          if (!got.handed_back_ok) fail("queue: pointer not handed back / not taken");
          if (got.status == wq::queue_status::queued) {
            counts(mine).instances.fetch_add(1);
            if (my_ordered) fifo_log_.push_back(mine);
          }
          break;
        }
        case 2: {  // mod_delayed_work (typed; C-style items cannot tell "disabled" apart)
          if (!my_it.owning()) break;
          // Mostly 0: a delay postpones a pending item again and again (rule 20), which
          // would leave little to run.
          const std::chrono::nanoseconds delay =
              my_ordered || (rng() & 1u) != 0
                  ? 0ns
                  : std::chrono::nanoseconds(static_cast<std::int64_t>(rng() % 200000));
          my_it.probe().quiet.store(false);
          const mod_outcome got = my_it.mod(my_q, delay);
          if (!got.handed_back_ok) fail("mod: pointer not handed back / not taken");
          if (got.was_pending) counts(mine).cancels.fetch_add(1);  // that instance never runs
          if (*got.status == wq::queue_status::queued) {
            counts(mine).instances.fetch_add(1);
            if (my_ordered) fifo_log_.push_back(mine);
          }
          break;
        }
        case 3:
        case 4: {  // cancel / cancel_sync, typed or not
          const bool sync = kind == 4;
          bool back_ok = true;
          bool was = false;
          {
            grab_scope g(counts(any));
            was = any_it.cancel(sync, (rng() & 1u) != 0, back_ok);
          }
          if (was) counts(any).cancels.fetch_add(1);
          if (!back_ok) fail("typed cancel handed back another pointer");
          if (sync && owner(any) == t) expect_quiet(any, "cancel_sync");
          break;
        }
        case 5:
        case 6: {  // disable / disable_sync
          const bool sync = kind == 6;
          ++disables[static_cast<std::size_t>(any)];
          bool was = false;
          {
            grab_scope g(counts(any));
            was = sync ? wq::disable_delayed_work_sync(any_it.work())
                       : wq::disable_delayed_work(any_it.work());
          }
          if (was) counts(any).cancels.fetch_add(1);
          if (sync && owner(any) == t) expect_quiet(any, "disable_sync");
          break;
        }
        case 7: {  // enable one of this driver's disables
          for (std::size_t k = 0; k < disables.size(); ++k) {
            const std::size_t i = (k + static_cast<std::size_t>(any)) % disables.size();
            if (disables[i] == 0) continue;
            --disables[i];
            (void)wq::enable_delayed_work(items_[i]->work());
            break;
          }
          break;
        }
        case 8: {  // flush_work
          const std::uint64_t grabs_before = counts(any).grabs_started.load();
          const bool grabbing = counts(any).grabs_active.load() != 0;
          (void)wq::flush_work(any_it.work());
          if (owner(any) == t && is_ordered_item(any) && !grabbing &&
              counts(any).grabs_started.load() == grabs_before) {
            // Only this thread queues it and it never re-queues itself: nothing of it runs
            // from now until this thread queues it again (rule 23). Not checked if another
            // driver grabbed an instance meanwhile (a grab by mod_delayed_work queues it
            // again); the cancel case alone is checked by the "older running instance" test
            // in model_test.cpp.
            expect_quiet(any, "flush_work");
          }
          break;
        }
        case 9: (void)wq::flush_delayed_work(any_it.work()); break;
        case 10: {
          const std::error_code ec = queues_[rng() % queues_.size()]->flush();
          if (ec) fail("flush() failed: " + ec.message());
          break;
        }
        case 11: {
          const std::error_code ec = queues_[rng() % queues_.size()]->drain();
          if (ec) fail("drain() failed: " + ec.message());
          break;
        }
        case 12: {  // a function posted to a queue's executor (an Asio completion bound to it)
          posted_.fetch_add(1);
          boost::asio::post(queues_[rng() % queues_.size()]->get_executor(), [this] {
            queue_probe* q = tl_probe;
            if (q == nullptr) {
              fail("a posted function ran without its queue's on_started");
            } else if (q->running.fetch_add(1) + 1 > q->max_active) {
              fail("queue " + std::to_string(q->index) +
                   " ran a posted function beyond max_active (rule 37)");
            }
            if (q != nullptr) q->running.fetch_sub(1);
            posted_runs_.fetch_add(1);
          });
          break;
        }
        default: break;
      }
      // Not a synchronisation: on a small machine the drivers would otherwise starve the
      // workers, and most queueing attempts would find their items still pending.
      std::this_thread::yield();
    }
    for (std::size_t i = 0; i < disables.size(); ++i)
      for (; disables[i] > 0; --disables[i]) (void)wq::enable_delayed_work(items_[i]->work());
    return ops;
  }

  bool running(int i) {
    for (auto& r : items_[static_cast<std::size_t>(i)]->probe().running_on)
      if (r.load() != 0) return true;
    return false;
  }

  void expect_quiet(int i, const char* what) {
    item_slot& it = *items_[static_cast<std::size_t>(i)];
    // (is_pending() is not checked: another driver's cancel owns PENDING for a moment.)
    if (running(i))
      fail(std::string(what) + " of item " + std::to_string(i) +
           " returned while it was running (rules 23, 29, 32)");
    it.probe().quiet.store(true);  // until this driver queues it again
  }

  void finish(conc_result& r) {
    for (auto& it : items_) it->probe().quiet.store(false);
    // Fire what is still armed and run everything, chains included.
    for (auto& it : items_) (void)wq::flush_delayed_work(it->work());
    for (auto& q : queues_) {
      const std::error_code ec = q->drain();
      if (ec) fail("final drain() failed: " + ec.message());
    }
    if (posted_runs_.load() != posted_.load())
      fail(std::to_string(posted_.load()) + " functions posted to the queues' executors, " +
           std::to_string(posted_runs_.load()) + " ran (exactly once; held during drains, D2)");
    for (int i = 0; i < item_count(); ++i) {
      item_slot& it = *items_[static_cast<std::size_t>(i)];
      const std::uint64_t inst = counts(i).instances.load();
      const std::uint64_t canc = counts(i).cancels.load();
      const auto runs = static_cast<std::uint64_t>(it.probe().runs.load());
      r.instances += inst;
      r.cancels += canc;
      r.runs += runs;
      if (it.work().is_pending())
        fail("item " + std::to_string(i) + " still pending after the final drain");
      if (it.work().disable_count() != 0)
        fail("item " + std::to_string(i) + " still disabled at the end");
      if (inst - canc != runs)
        fail("item " + std::to_string(i) + " (" + to_string(it.kind()) +
             "): " + std::to_string(inst) + " queued - " + std::to_string(canc) +
             " cancelled != " + std::to_string(runs) + " runs (exactly once)");
    }
    // Rule 39: the ordered queue ran a subsequence of driver 0's queueing log, in order.
    const std::vector<int> ran = probes_[ordered_q]->take_runs();
    std::size_t k = 0;
    for (int i : ran) {
      while (k < fifo_log_.size() && fifo_log_[k] != i) ++k;
      if (k == fifo_log_.size()) {
        fail("ordered queue ran item " + std::to_string(i) + " out of queueing order (rule 39)");
        break;
      }
      ++k;
    }
    for (std::size_t q = 0; q < queues_.size(); ++q) {
      const std::error_code ec = queues_[q]->destroy();
      probes_[q]->destroyed.store(true);
      if (ec) fail("destroy() failed: " + ec.message());
    }
    // A destroyed queue refuses new items and hands the pointer back.
    for (auto& it : items_) {
      const queue_outcome got = it->queue(*queues_[pool_q], std::chrono::nanoseconds(-1));
      if (got.status != wq::queue_status::rejected || !got.handed_back_ok)
        fail("queueing on a destroyed queue: " + std::string(wq::to_string(got.status)));
    }
    int owning = 0;
    for (int i = 0; i < item_count(); ++i) {
      item_slot& it = *items_[static_cast<std::size_t>(i)];
      if (it.extra_refs() != 0)
        fail("item " + std::to_string(i) + ": " + std::to_string(it.extra_refs()) +
             " references left with the queues after destroy");
      owning += it.owning() ? 1 : 0;
    }
    for (auto& it : items_) it->reset();
    if (destroyed_.load() != owning)
      fail(std::to_string(destroyed_.load()) + " owned objects destroyed, want " +
           std::to_string(owning));
    if (log_.any()) {
      r.ok = false;
      r.message = log_.text();
    }
  }

  conc_config cfg_;
  violation_log log_;
  std::atomic<int> destroyed_{0};
  std::atomic<std::uint64_t> posted_{0};       // functions posted to the queues' executors
  std::atomic<std::uint64_t> posted_runs_{0};  // ... and run
  std::vector<std::unique_ptr<queue_probe>> probes_;
  std::vector<std::unique_ptr<wq::workqueue>> queues_;
  std::vector<std::unique_ptr<item_slot>> items_;
  std::unique_ptr<item_counts[]> counts_;
  std::vector<int> fifo_log_;  // driver 0 only, read after the join
};

}  // namespace detail

/// Runs the concurrent model test once.
inline conc_result run_concurrent(const conc_config& cfg) {
  diagnostic_counter diagnostics;  // misuse must not abort; none is expected
  diagnostic_counter::reset();
  conc_result r;
  {
    detail::conc_world w(cfg);
    r = w.run();
  }
  const int misuse =
      diagnostic_counter::total() - diagnostic_counter::count(wq::errc::armed_items_cancelled);
  if (misuse != 0 && r.ok) {
    r.ok = false;
    r.message = std::to_string(misuse) + " unexpected diagnostics reported";
  }
  return r;
}

}  // namespace wq_model
