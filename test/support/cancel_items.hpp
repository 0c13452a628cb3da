// SPDX-License-Identifier: BSL-1.0
// Items shared by the cancel and flush tests: C-style items (so the untyped mod_delayed_work
// and enable_and_queue_work accept them even before they were ever queued), shared_ptr- and
// unique_ptr-owned items for ownership checks, `typed_obj<Kind>` (one item type per pointer
// kind, for the typed calls that deduce the pointer type from `run`), a gate a work function
// blocks on, and a helper that opens a gate from another thread after a bounded delay.
//
// Thread safety: the counters are atomics; `body` and `done` are written by the test thread
// before the item is queued (the queueing call publishes them) and only read by the worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/shared_work.hpp>
#include <wq/work.hpp>
#include <wq/workqueue.hpp>

#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace wq_test {

/// Nanoseconds on the steady clock (for atomics recording when something happened).
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A work function blocks on a gate: `started` opens when it enters, it waits for `open`, and
/// `finished` is the last thing it sets.
struct gate {
  latch started{1};
  latch open{1};
  std::atomic<bool> finished{false};
  std::atomic<bool> timed_out{false};

  void pass() {
    started.count_down();
    if (!open.wait_for(must_happen)) timed_out.store(true);
    finished.store(true);
  }
};

/// Opens `g` from a new thread after `delay` (the delay only makes a missing wait observable;
/// correctness never depends on it). Join the returned thread.
inline std::thread open_later(gate& g, std::chrono::milliseconds delay) {
  return std::thread([&g, delay] {
    std::this_thread::sleep_for(delay);
    g.open.count_down();
  });
}

/// A C-style work item: runs `body` (if set), then counts the run and counts down `done`.
struct c_work {
  std::function<void(c_work&)> body;
  std::atomic<int> runs{0};
  latch* done = nullptr;
  wq::work w{wq::fn_ops<&c_work::fn>};

  static void fn(wq::work* item) noexcept {
    c_work* self = wq::container_of<&c_work::w>(item);
    if (self->body) self->body(*self);
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

/// A C-style delayed item: runs `body` (if set), records when and on which thread it ran, then
/// counts the run and counts down `done`.
struct c_delayed {
  std::function<void(c_delayed&)> body;
  std::atomic<int> runs{0};
  std::atomic<std::int64_t> ran_at_ns{0};
  std::atomic<std::thread::id> ran_on{};
  latch* done = nullptr;
  wq::delayed_work d{wq::fn_ops<&c_delayed::fn>};

  static void fn(wq::work* item) noexcept {
    auto* self = wq::container_of<&c_delayed::d>(wq::to_delayed_work(item));
    self->ran_at_ns.store(now_ns());
    self->ran_on.store(std::this_thread::get_id());
    if (self->body) self->body(*self);
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

/// An object owned by std::shared_ptr with a plain and a delayed item.
struct shared_obj : counted {
  explicit shared_obj(lifetime_counter& c) : counted(c) {}
  wq::shared_work w;
  wq::shared_delayed_work d;
  std::atomic<int> runs{0};
  latch* done = nullptr;

  static void run(std::shared_ptr<shared_obj> self, wq::id<&shared_obj::w>) noexcept {
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
  static void run(std::shared_ptr<shared_obj> self, wq::id<&shared_obj::d>) noexcept {
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

/// An object owned by std::unique_ptr; its run function destroys it (counted in `runs`).
struct unique_obj : counted {
  unique_obj(lifetime_counter& c, std::atomic<int>& r) : counted(c), runs(r) {}
  wq::work w;
  wq::delayed_work d;
  std::atomic<int>& runs;

  static void run(std::unique_ptr<unique_obj> self, wq::id<&unique_obj::w>) noexcept {
    self->runs.fetch_add(1);
  }
  static void run(std::unique_ptr<unique_obj> self, wq::id<&unique_obj::d>) noexcept {
    self->runs.fetch_add(1);
  }
};

// ---- one item type per pointer kind ---------------------------------------------------------
//
// A kind says how the test owns a typed_obj (`holder`), what it hands to enqueue (`give`) and how
// it takes a pointer the queue handed back (`take_back`, returning the object's address).
// Writes made by run are read by the test after a flush, latch or gate, which order them.

struct no_base {};

template <class Kind>
struct typed_obj
    : std::conditional_t<Kind::intrusive, boost::intrusive_ref_counter<typed_obj<Kind>>, no_base> {
  using pointer = typename Kind::template pointer<typed_obj>;
  typename Kind::work_type w;
  typename Kind::delayed_type d;
  std::atomic<int> runs{0};
  gate* g = nullptr;  // if set, run blocks on it
  // For unique_ptr: where run hands its pointer back, so the object outlives run.
  typename Kind::template holder<typed_obj>* keep = nullptr;

  static void run(pointer self, wq::id<&typed_obj::w>) noexcept { ran(std::move(self)); }
  static void run(pointer self, wq::id<&typed_obj::d>) noexcept { ran(std::move(self)); }

 private:
  static void ran(pointer self) noexcept {
    typed_obj* o = Kind::address(self);
    if (o->g != nullptr) o->g->pass();
    o->runs.fetch_add(1);
    if constexpr (Kind::unique) {
      if (o->keep != nullptr) *o->keep = std::move(self);
    }
  }
};

struct shared_kind {
  static constexpr bool intrusive = false;
  static constexpr bool unique = false;
  template <class T>
  using pointer = std::shared_ptr<T>;
  template <class T>
  using holder = std::shared_ptr<T>;
  using work_type = wq::shared_work;
  using delayed_type = wq::shared_delayed_work;
  template <class T>
  static holder<T> make() {
    return std::make_shared<T>();
  }
  template <class T>
  static pointer<T> give(holder<T>& h) {
    return h;
  }
  template <class T>
  static T* take_back(holder<T>&, pointer<T>&& p) {
    return p.get();
  }
  template <class T>
  static T* address(const pointer<T>& p) {
    return p.get();
  }
  template <class T>
  static long owners(const holder<T>& h) {
    return h.use_count();
  }
};

struct unique_kind {
  static constexpr bool intrusive = false;
  static constexpr bool unique = true;
  template <class T>
  using pointer = std::unique_ptr<T>;
  template <class T>
  using holder = std::unique_ptr<T>;
  using work_type = wq::work;
  using delayed_type = wq::delayed_work;
  template <class T>
  static holder<T> make() {
    return std::make_unique<T>();
  }
  template <class T>
  static pointer<T> give(holder<T>& h) {
    return std::move(h);
  }
  template <class T>
  static T* take_back(holder<T>& h, pointer<T>&& p) {
    h = std::move(p);
    return h.get();
  }
  template <class T>
  static T* address(const pointer<T>& p) {
    return p.get();
  }
  template <class T>
  static long owners(const holder<T>& h) {
    return h ? 1 : 0;
  }
};

struct intrusive_kind {
  static constexpr bool intrusive = true;
  static constexpr bool unique = false;
  template <class T>
  using pointer = boost::intrusive_ptr<T>;
  template <class T>
  using holder = boost::intrusive_ptr<T>;
  using work_type = wq::work;
  using delayed_type = wq::delayed_work;
  template <class T>
  static holder<T> make() {
    return holder<T>(new T);
  }
  template <class T>
  static pointer<T> give(holder<T>& h) {
    return h;
  }
  template <class T>
  static T* take_back(holder<T>&, pointer<T>&& p) {
    return p.get();
  }
  template <class T>
  static T* address(const pointer<T>& p) {
    return p.get();
  }
  template <class T>
  static long owners(const holder<T>& h) {
    return static_cast<long>(h->use_count());
  }
};

struct raw_kind {
  static constexpr bool intrusive = false;
  static constexpr bool unique = false;
  template <class T>
  using pointer = T*;
  template <class T>
  using holder = std::unique_ptr<T>;  // the test owns; the queue borrows
  using work_type = wq::work;
  using delayed_type = wq::delayed_work;
  template <class T>
  static holder<T> make() {
    return std::make_unique<T>();
  }
  template <class T>
  static pointer<T> give(holder<T>& h) {
    return h.get();
  }
  template <class T>
  static T* take_back(holder<T>&, pointer<T>&& p) {
    return p;
  }
  template <class T>
  static T* address(T* p) {
    return p;
  }
  template <class T>
  static long owners(const holder<T>& h) {
    return h ? 1 : 0;
  }
};

}  // namespace wq_test
