// SPDX-License-Identifier: BSL-1.0
// Instrumented work items and queue probes shared by the model-based tests (model_test.cpp)
// and the fuzz target (fuzz/wq_fuzz.cpp).
//
// Every work function reports to `on_run`, which checks the invariants that hold whatever the
// interleaving: an item never runs twice at once on one queue (rules 9-11), a queue never runs
// more than max_active items at once (rules 37, 39), nothing runs on a queue whose destroy()
// has returned (rule 50), nothing runs after a cancel_sync whose item nobody re-queued
// (rules 29, 32). Each queue has a `queue_probe` installed as its observer: on_started tells
// the work function which queue it runs on (a thread_local), and the probe logs run order.
//
// Three kinds of item cover the three ownership models: `ref_item` (boost::intrusive_ptr with
// a counted add_ref/release, Rust's ARef), `shared_item` (std::shared_ptr, Rust's Arc) and
// `c_item` (a C-style item with a work function, owning nothing). `item_slot` holds one of them
// and performs each operation through the typed or the untyped API.
//
// Thread safety: probes and item counters are atomics or mutex-guarded; worker threads never
// call Catch2, they record violations in a `violation_log` the driver checks.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/diagnostics.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/observer.hpp>
#include <wq/shared_work.hpp>
#include <wq/workqueue.hpp>

namespace wq_model {

inline constexpr int max_queues = 4;

/// The first invariant violations seen (by workers or drivers). Thread-safe.
class violation_log {
 public:
  void add(std::string what) noexcept {
    std::lock_guard lk(mu_);
    ++count_;
    if (first_.size() < 8) {
      try {
        first_.push_back(std::move(what));
      } catch (...) {
      }
    }
    any_.store(true, std::memory_order_release);
  }
  [[nodiscard]] bool any() const noexcept { return any_.load(std::memory_order_acquire); }
  [[nodiscard]] std::string text() const {
    std::lock_guard lk(mu_);
    std::string out;
    for (const auto& s : first_) out += "  " + s + "\n";
    if (count_ > first_.size())
      out += "  ... " + std::to_string(count_ - first_.size()) + " more\n";
    return out;
  }
  void clear() {
    std::lock_guard lk(mu_);
    first_.clear();
    count_ = 0;
    any_.store(false, std::memory_order_release);
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> first_;
  std::size_t count_ = 0;
  std::atomic<bool> any_{false};
};

/// Counts the diagnostics wq reports, per code, while installed (one at a time per process).
class diagnostic_counter {
 public:
  diagnostic_counter() { previous_ = wq::set_diagnostic_handler(&record); }
  ~diagnostic_counter() { wq::set_diagnostic_handler(previous_); }
  diagnostic_counter(const diagnostic_counter&) = delete;
  diagnostic_counter& operator=(const diagnostic_counter&) = delete;

  static int count(wq::errc e) noexcept {
    return counts()[index(e)].load(std::memory_order_relaxed);
  }
  static int total() noexcept {
    int n = 0;
    for (auto& c : counts()) n += c.load(std::memory_order_relaxed);
    return n;
  }
  static void reset() noexcept {
    for (auto& c : counts()) c.store(0, std::memory_order_relaxed);
  }

 private:
  static std::size_t index(wq::errc e) noexcept {
    const int v = static_cast<int>(e);
    return static_cast<std::size_t>(v < 100 ? v : 50 + (v - 100)) % 64;
  }
  static std::array<std::atomic<int>, 64>& counts() noexcept {
    static std::array<std::atomic<int>, 64> c{};
    return c;
  }
  static void record(const wq::diagnostic& d) noexcept {
    counts()[index(d.code)].fetch_add(1, std::memory_order_relaxed);
  }
  wq::diagnostic_handler previous_ = nullptr;
};

struct queue_probe;
/// The probe of the queue whose item the calling worker thread runs (set by on_started).
inline thread_local queue_probe* tl_probe = nullptr;

/// One queue's observer: tells work functions where they run, counts and logs their runs.
struct queue_probe final : wq::observer {
  queue_probe(int index_, int max_active_, violation_log& log_)
      : index(index_), max_active(max_active_), log(&log_) {}
  const int index;
  const int max_active;
  violation_log* const log;
  std::atomic<int> running{0};
  std::atomic<int> max_seen{0};
  std::atomic<bool> destroyed{false};  // set once destroy() has returned
  std::mutex run_mu;
  std::vector<int> runs;  // item indices in the order their functions started; under run_mu

  void on_started(std::string_view, const wq::work&) noexcept override { tl_probe = this; }
  void on_finished(std::string_view, const void*, const char*) noexcept override {
    tl_probe = nullptr;
  }
  std::vector<int> take_runs() {
    std::lock_guard lk(run_mu);
    return std::exchange(runs, {});
  }
};

/// What every item kind records about its runs.
struct item_probe {
  int index = 0;
  violation_log* log = nullptr;
  std::atomic<int> runs{0};
  std::array<std::atomic<int>, max_queues> running_on{};  // per queue index
  std::atomic<bool> quiet{false};     // a cancel_sync returned and nobody may have re-queued it
  std::atomic<int> requeues_left{0};  // self-requeues the work function may still do
  bool yield_in_run = false;          // widen the run's window (concurrent mode); immutable
  // Hook for self-requeue (concurrent mode); called inside the work function.
  void (*requeue)(item_probe& self, queue_probe& on, void* pointer) noexcept = nullptr;
  void* requeue_ctx = nullptr;
};

/// The checks at the start of a run; returns the queue probe (nullptr if unknown).
inline queue_probe* run_begin(item_probe& it) noexcept {
  queue_probe* q = tl_probe;
  if (q == nullptr) {
    it.log->add("item " + std::to_string(it.index) + " ran without its queue's on_started");
    it.runs.fetch_add(1);
    return nullptr;
  }
  if (q->destroyed.load())
    it.log->add("item " + std::to_string(it.index) + " ran on queue " + std::to_string(q->index) +
                " after its destroy() returned (rule 50)");
  if (it.quiet.load())
    it.log->add("item " + std::to_string(it.index) +
                " ran after cancel_sync/disable_sync returned and before anyone re-queued it "
                "(rules 29, 32)");
  if (it.running_on[static_cast<std::size_t>(q->index)].fetch_add(1) != 0)
    it.log->add("item " + std::to_string(it.index) + " ran concurrently with itself on queue " +
                std::to_string(q->index) + " (rules 9-11)");
  const int now = q->running.fetch_add(1) + 1;
  if (now > q->max_active)
    it.log->add("queue " + std::to_string(q->index) + " ran " + std::to_string(now) +
                " items at once, max_active " + std::to_string(q->max_active) + " (rule 37)");
  int seen = q->max_seen.load();
  while (now > seen && !q->max_seen.compare_exchange_weak(seen, now)) {
  }
  {
    std::lock_guard lk(q->run_mu);
    q->runs.push_back(it.index);
  }
  return q;
}

inline void run_end(item_probe& it, queue_probe* q) noexcept {
  if (q == nullptr) return;
  it.runs.fetch_add(1);
  q->running.fetch_sub(1);
  it.running_on[static_cast<std::size_t>(q->index)].fetch_sub(1);
}

/// Wraps a run: checks, optional self-requeue (which may consume `pointer`), bookkeeping.
template <class Self>
void run_body(item_probe& it, Self& pointer) noexcept {
  queue_probe* q = run_begin(it);
  if (q != nullptr && it.requeue != nullptr && it.requeues_left.load() > 0 &&
      it.requeues_left.fetch_sub(1) > 0)
    it.requeue(it, *q, &pointer);
  // Not a synchronisation: only lets other threads act while the function runs.
  if (it.yield_in_run) std::this_thread::yield();
  run_end(it, q);
}

// ---- the three item kinds ------------------------------------------------------------------

/// Owned through boost::intrusive_ptr; add_ref/release are counted so that a reference
/// released twice (or never) shows up in `refs` and `destroyed`.
struct ref_item : item_probe {
  wq::delayed_work d;
  std::atomic<int> refs{0};
  std::atomic<int>* destroyed = nullptr;

  friend void intrusive_ptr_add_ref(ref_item* p) noexcept { p->refs.fetch_add(1); }
  friend void intrusive_ptr_release(ref_item* p) noexcept {
    const int before = p->refs.fetch_sub(1);
    if (before <= 0) p->log->add("ref_item " + std::to_string(p->index) + " released below zero");
    if (before == 1) {
      p->destroyed->fetch_add(1);
      delete p;
    }
  }
  static void run(boost::intrusive_ptr<ref_item> self, wq::id<&ref_item::d>) noexcept {
    run_body(*self, self);
  }
};

/// Owned through std::shared_ptr (the reference lives in the shared_delayed_work).
struct shared_item : item_probe {
  wq::shared_delayed_work d;
  std::atomic<int>* destroyed = nullptr;
  shared_item() = default;
  shared_item(const shared_item&) = delete;
  shared_item& operator=(const shared_item&) = delete;
  ~shared_item() {
    if (destroyed != nullptr) destroyed->fetch_add(1);
  }
  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::d>) noexcept {
    run_body(*self, self);
  }
};

/// A C-style item (kernel INIT_DELAYED_WORK): owns nothing, queued through the untyped API.
struct c_item : item_probe {
  static void fn(wq::work* w) noexcept;
  wq::delayed_work d{wq::fn_ops<&c_item::fn>};
};
inline void c_item::fn(wq::work* w) noexcept {
  c_item* self = wq::container_of<&c_item::d>(wq::to_delayed_work(w));
  run_body(*self, self);
}

enum class item_kind : std::uint8_t { ref, shared, c };
inline const char* to_string(item_kind k) noexcept {
  switch (k) {
    case item_kind::ref: return "ref";
    case item_kind::shared: return "shared";
    case item_kind::c: return "c";
  }
  return "?";
}

/// The outcome of a queueing call, with ownership checked.
struct queue_outcome {
  wq::queue_status status;
  bool handed_back_ok = true;  // not queued: the caller's pointer came back; queued: it did not
};

/// The outcome of mod_delayed_work.
struct mod_outcome {
  bool was_pending;
  std::optional<wq::queue_status> status;  // typed forms only
  bool handed_back_ok = true;
};

/// One item of any kind, with the world's strong reference to it.
class item_slot {
 public:
  item_slot(int index, item_kind kind, violation_log& log, std::atomic<int>& destroyed)
      : kind_(kind) {
    switch (kind) {
      case item_kind::ref:
        ref_ = boost::intrusive_ptr<ref_item>(new ref_item);
        ref_->destroyed = &destroyed;
        base_ = ref_.get();
        dw_ = &ref_->d;
        break;
      case item_kind::shared:
        shared_ = std::make_shared<shared_item>();
        shared_->destroyed = &destroyed;
        base_ = shared_.get();
        dw_ = &shared_->d;
        break;
      case item_kind::c:
        c_ = std::make_unique<c_item>();
        base_ = c_.get();
        dw_ = &c_->d;
        break;
    }
    base_->index = index;
    base_->log = &log;
  }

  [[nodiscard]] item_kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool owning() const noexcept { return kind_ != item_kind::c; }
  [[nodiscard]] item_probe& probe() noexcept { return *base_; }
  [[nodiscard]] wq::delayed_work& work() noexcept { return *dw_; }
  [[nodiscard]] ref_item* ref() noexcept { return ref_.get(); }
  [[nodiscard]] shared_item* shared() noexcept { return shared_.get(); }

  /// References to the object other than the world's own: 1 per pending instance if owning.
  [[nodiscard]] long extra_refs() const noexcept {
    if (ref_) return ref_->refs.load() - 1;
    if (shared_) return shared_.use_count() - 1;
    return 0;
  }

  /// Queues now (`delay` < 0) or after `delay` (0 = now through the delayed entry point).
  queue_outcome queue(wq::workqueue& q, std::chrono::nanoseconds delay) {
    const bool now = delay.count() < 0;
    switch (kind_) {
      case item_kind::ref: {
        auto r = now ? q.enqueue<&ref_item::d>(ref_) : q.enqueue_delayed<&ref_item::d>(ref_, delay);
        return {r.status, r.queued() ? !r.pointer : r.pointer == ref_};
      }
      case item_kind::shared: {
        auto r = now ? q.enqueue<&shared_item::d>(shared_)
                     : q.enqueue_delayed<&shared_item::d>(shared_, delay);
        return {r.status, r.queued() ? !r.pointer : r.pointer == shared_};
      }
      case item_kind::c: {
        return {now ? q.queue(c_->d) : q.queue_delayed(c_->d, delay)};
      }
    }
    return {wq::queue_status::unbound, false};
  }

  /// mod_delayed_work: typed for owning items, untyped for C-style ones.
  mod_outcome mod(wq::workqueue& q, std::chrono::nanoseconds delay) {
    switch (kind_) {
      case item_kind::ref: {
        auto r = wq::mod_delayed_work<&ref_item::d>(q, ref_, delay);
        const bool kept = r.was_pending || r.status != wq::queue_status::queued;
        return {r.was_pending, r.status, kept ? r.pointer == ref_ : !r.pointer};
      }
      case item_kind::shared: {
        auto r = wq::mod_delayed_work<&shared_item::d>(q, shared_, delay);
        const bool kept = r.was_pending || r.status != wq::queue_status::queued;
        return {r.was_pending, r.status, kept ? r.pointer == shared_ : !r.pointer};
      }
      case item_kind::c: return {wq::mod_delayed_work(q, c_->d, delay), std::nullopt};
    }
    return {false, std::nullopt, false};
  }

  /// cancel_delayed_work[_sync]; `typed` uses the typed form (owning items), which hands the
  /// queue's reference back. Returns whether it was pending; `handed_back_ok` as for queue.
  bool cancel(bool sync, bool typed, bool& handed_back_ok) {
    handed_back_ok = true;
    if (typed && kind_ == item_kind::ref) {
      using P = boost::intrusive_ptr<ref_item>;
      std::optional<P> back = sync ? wq::cancel_work_sync<&ref_item::d, P>(*ref_)
                                   : wq::cancel_work<&ref_item::d, P>(*ref_);
      if (back) handed_back_ok = *back == ref_;
      return back.has_value();
    }
    if (typed && kind_ == item_kind::shared) {
      using P = std::shared_ptr<shared_item>;
      std::optional<P> back = sync ? wq::cancel_work_sync<&shared_item::d, P>(*shared_)
                                   : wq::cancel_work<&shared_item::d, P>(*shared_);
      if (back) handed_back_ok = *back == shared_;
      return back.has_value();
    }
    return sync ? wq::cancel_delayed_work_sync(*dw_) : wq::cancel_delayed_work(*dw_);
  }

  /// Drops the world's reference (end of a run).
  void reset() noexcept {
    ref_.reset();
    shared_.reset();
    c_.reset();
    base_ = nullptr;
    dw_ = nullptr;
  }

 private:
  item_kind kind_;
  boost::intrusive_ptr<ref_item> ref_;
  std::shared_ptr<shared_item> shared_;
  std::unique_ptr<c_item> c_;
  item_probe* base_ = nullptr;
  wq::delayed_work* dw_ = nullptr;
};

}  // namespace wq_model
