// SPDX-License-Identifier: BSL-1.0
// Tests for wq/work_pointer.hpp: how each owning pointer travels through a queue (semantics.md
// §2, Rust `Pin<KBox<T>>` / `Arc<T>` / `ARef<T>`): ownership moves into the queue and comes
// back to run; an already-pending call hands the caller's reference back (§5.16, rule 1); a
// refusing queue hands it back too; nothing is leaked or released twice (lifetime counters and
// use counts). Also a user specialisation of work_pointer_traits.
//
// Queueing a disabled item (rule 16) is tested in cancel_test.cpp ("a disabled item refuses
// every queueing call").
#include <wq/work_pointer.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/workqueue.hpp>

#include "support/items.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq_test::latch;
using wq_test::lifetime_counter;

/// What a run function saw; written by run, read by the test after a drain or latch.
struct observation {
  const void* object = nullptr;
  int runs = 0;
  long use_count_in_run = 0;
};

// ---- items, one per pointer type -------------------------------------------------------------

struct unique_item : wq_test::counted {
  explicit unique_item(lifetime_counter& c, observation& o) : counted(c), obs(o) {}
  observation& obs;
  wq::work w;
  wq::delayed_work d;
  // If set, run keeps the object alive by moving its pointer here.
  std::unique_ptr<unique_item>* keep = nullptr;
  latch* done = nullptr;  // counted down by the delayed run, if set

  static void run(std::unique_ptr<unique_item> self, wq::id<&unique_item::w>) noexcept {
    self->obs.object = self.get();
    ++self->obs.runs;
    if (self->keep != nullptr) *self->keep = std::move(self);
  }
  static void run(std::unique_ptr<unique_item> self, wq::id<&unique_item::d>) noexcept {
    self->obs.object = self.get();
    ++self->obs.runs;
    if (self->done != nullptr) self->done->count_down();
  }
};

struct shared_item : wq_test::counted {
  explicit shared_item(lifetime_counter& c, observation& o) : counted(c), obs(o) {}
  observation& obs;
  wq::shared_work w;
  wq::shared_work other;  // a second member: its own pending reference

  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::w>) noexcept {
    self->obs.object = self.get();
    self->obs.use_count_in_run = self.use_count();
    ++self->obs.runs;
  }
  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::other>) noexcept {
    ++self->obs.runs;
  }
};

struct intrusive_item : wq_test::counted,
                        boost::intrusive_ref_counter<intrusive_item, boost::thread_safe_counter> {
  explicit intrusive_item(lifetime_counter& c, observation& o) : counted(c), obs(o) {}
  observation& obs;
  wq::work w;
  wq::work other;

  static void run(boost::intrusive_ptr<intrusive_item> self, wq::id<&intrusive_item::w>) noexcept {
    self->obs.object = self.get();
    self->obs.use_count_in_run = static_cast<long>(self->use_count());
    ++self->obs.runs;
  }
  static void run(boost::intrusive_ptr<intrusive_item> self,
                  wq::id<&intrusive_item::other>) noexcept {
    ++self->obs.runs;
  }
};

struct raw_item {
  explicit raw_item(observation& o) : obs(o) {}
  observation& obs;
  wq::work w;
  static void run(raw_item* self, wq::id<&raw_item::w>) noexcept {
    self->obs.object = self;
    ++self->obs.runs;
  }
};

// ---- traits ----------------------------------------------------------------------------------

static_assert(wq::work_pointer<raw_item*>);
static_assert(wq::work_pointer<std::unique_ptr<unique_item>>);
static_assert(wq::work_pointer<std::shared_ptr<shared_item>>);
static_assert(wq::work_pointer<boost::intrusive_ptr<intrusive_item>>);
static_assert(!wq::work_pointer<int>);
static_assert(!wq::work_pointer<std::weak_ptr<shared_item>>);
static_assert(wq::work_pointer_traits<std::unique_ptr<unique_item>>::unique);
static_assert(!wq::work_pointer_traits<std::shared_ptr<shared_item>>::unique);
static_assert(!wq::work_pointer_traits<boost::intrusive_ptr<intrusive_item>>::unique);
static_assert(!wq::work_pointer_traits<raw_item*>::unique);
static_assert(std::is_same_v<wq::work_pointer_traits<std::shared_ptr<shared_item>>::element_type,
                             shared_item>);

// ---- std::unique_ptr -------------------------------------------------------------------------

TEST_CASE("work_pointer: std::unique_ptr moves into the queue and back to run",
          "[work_pointer][unique]") {
  lifetime_counter counter;
  observation obs;

  SECTION("run receives the object and frees it") {
    {
      wq::workqueue q{"unique"};
      auto p = std::make_unique<unique_item>(counter, obs);
      const void* address = p.get();
      auto r = q.enqueue<&unique_item::w>(std::move(p));
      CHECK(r.status == wq::queue_status::queued);
      CHECK(r.pointer == nullptr);  // the queue took it
      q.drain();
      CHECK(obs.object == address);
      CHECK(obs.runs == 1);
      CHECK(counter.alive() == 0);
    }
    CHECK(counter.constructed.load() == 1);
    CHECK(counter.destroyed.load() == 1);
  }

  SECTION("run may keep the object: ownership really is handed to it") {
    std::unique_ptr<unique_item> kept;
    {
      wq::workqueue q{"unique-keep"};
      auto p = std::make_unique<unique_item>(counter, obs);
      p->keep = &kept;
      REQUIRE(q.enqueue<&unique_item::w>(std::move(p)).queued());
      q.drain();
    }
    REQUIRE(kept != nullptr);
    CHECK(obs.object == kept.get());
    CHECK(counter.alive() == 1);
    kept.reset();
    CHECK(counter.alive() == 0);
  }

  SECTION("delayed member") {
    {
      latch done{1};
      wq::workqueue q{"unique-delayed"};
      auto p = std::make_unique<unique_item>(counter, obs);
      p->done = &done;
      REQUIRE(q.enqueue_delayed<&unique_item::d>(std::move(p), 2ms).queued());
      // drain() does not wait for armed timers (rule 49): wait until the run has started, then
      // drain to wait for it to finish (and free the object).
      REQUIRE(done.wait_for());
      q.drain();
    }
    CHECK(obs.runs == 1);
    CHECK(counter.alive() == 0);
  }

  // Already pending cannot happen for std::unique_ptr: the caller held the only pointer to the
  // object, so the item cannot be pending through another unique_ptr (Rust's `Pin<KBox<T>>`
  // enqueue returns `()`). typed_queue asserts it (WQ_ASSERT) rather than returning the
  // pointer; reaching it would need the same object queued through a raw pointer too, which is
  // a precondition violation, so it is not exercised here.
}

// A stateless deleter that counts its calls: proves the queue rebuilds unique_ptr<T, D>.
struct counting_deleter {
  static inline std::atomic<int> calls{0};
  template <class T>
  void operator()(T* p) const noexcept {
    calls.fetch_add(1);
    delete p;
  }
};

struct deleter_item : wq_test::counted {
  explicit deleter_item(lifetime_counter& c) : counted(c) {}
  wq::work w;
  static void run(std::unique_ptr<deleter_item, counting_deleter>,
                  wq::id<&deleter_item::w>) noexcept {}
};

TEST_CASE("work_pointer: std::unique_ptr with a stateless custom deleter keeps its deleter",
          "[work_pointer][unique]") {
  lifetime_counter counter;
  counting_deleter::calls.store(0);
  {
    wq::workqueue q{"unique-deleter"};
    std::unique_ptr<deleter_item, counting_deleter> p{new deleter_item(counter)};
    REQUIRE(q.enqueue<&deleter_item::w>(std::move(p)).queued());
    q.drain();
  }
  CHECK(counting_deleter::calls.load() == 1);
  CHECK(counter.alive() == 0);
  CHECK(counter.destroyed.load() == 1);
}

// ---- std::shared_ptr -------------------------------------------------------------------------

TEST_CASE("work_pointer: std::shared_ptr: the queue holds one reference while pending",
          "[work_pointer][shared]") {
  lifetime_counter counter;
  observation obs;
  boost::asio::io_context io;
  auto p = std::make_shared<shared_item>(counter, obs);
  wq::workqueue q{io.get_executor(), "shared"};
  wq_test::drive_on_exit drive{io};

  SECTION("copy in: the caller keeps its reference") {
    auto r = q.enqueue<&shared_item::w>(p);
    REQUIRE(r.status == wq::queue_status::queued);
    CHECK(r.pointer == nullptr);
    CHECK(p.use_count() == 2);
    wq_test::run_ready(io);
    CHECK(obs.runs == 1);
    CHECK(obs.object == p.get());
    CHECK(obs.use_count_in_run == 2);  // ours + the one run received
    CHECK(p.use_count() == 1);
  }

  SECTION("move in: run receives the last reference and frees the object") {
    auto moved = std::move(p);
    REQUIRE(q.enqueue<&shared_item::w>(std::move(moved)).queued());
    CHECK(counter.alive() == 1);
    wq_test::run_ready(io);
    CHECK(obs.runs == 1);
    CHECK(obs.use_count_in_run == 1);
    CHECK(counter.alive() == 0);
  }

  SECTION("already pending: the caller's reference is handed back, not leaked") {
    REQUIRE(q.enqueue<&shared_item::w>(p).queued());
    CHECK(p.use_count() == 2);
    {
      auto again = q.enqueue<&shared_item::w>(p);
      CHECK(again.status == wq::queue_status::already_pending);
      CHECK(again.pointer == p);
      CHECK(p.use_count() == 3);  // ours, the queue's, the handed-back copy
    }
    CHECK(p.use_count() == 2);
    {
      auto copy = p;
      auto again = q.enqueue<&shared_item::w>(std::move(copy));
      CHECK(again.status == wq::queue_status::already_pending);
      CHECK(again.pointer.get() == p.get());
      CHECK(p.use_count() == 3);
    }
    CHECK(p.use_count() == 2);
    wq_test::run_ready(io);
    CHECK(obs.runs == 1);
    CHECK(p.use_count() == 1);
  }

  SECTION("two members: each pending member holds its own reference") {
    REQUIRE(q.enqueue<&shared_item::w>(p).queued());
    REQUIRE(q.enqueue<&shared_item::other>(p).queued());
    CHECK(p.use_count() == 3);
    wq_test::run_ready(io);
    CHECK(obs.runs == 2);
    CHECK(p.use_count() == 1);
  }
}

// ---- boost::intrusive_ptr --------------------------------------------------------------------

TEST_CASE("work_pointer: boost::intrusive_ptr: the queue holds one reference while pending",
          "[work_pointer][intrusive]") {
  lifetime_counter counter;
  observation obs;
  boost::asio::io_context io;
  boost::intrusive_ptr<intrusive_item> p{new intrusive_item(counter, obs)};
  wq::workqueue q{io.get_executor(), "intrusive"};
  wq_test::drive_on_exit drive{io};

  SECTION("copy in") {
    auto r = q.enqueue<&intrusive_item::w>(p);
    REQUIRE(r.status == wq::queue_status::queued);
    CHECK(r.pointer == nullptr);
    CHECK(p->use_count() == 2);
    wq_test::run_ready(io);
    CHECK(obs.runs == 1);
    CHECK(obs.object == p.get());
    CHECK(obs.use_count_in_run == 2);
    CHECK(p->use_count() == 1);
  }

  SECTION("move in: run receives the last reference and frees the object") {
    auto moved = std::move(p);
    REQUIRE(q.enqueue<&intrusive_item::w>(std::move(moved)).queued());
    CHECK(counter.alive() == 1);
    wq_test::run_ready(io);
    CHECK(obs.use_count_in_run == 1);
    CHECK(counter.alive() == 0);
  }

  SECTION("already pending: the caller's reference is handed back, not leaked") {
    REQUIRE(q.enqueue<&intrusive_item::w>(p).queued());
    CHECK(p->use_count() == 2);
    {
      auto again = q.enqueue<&intrusive_item::w>(p);
      CHECK(again.status == wq::queue_status::already_pending);
      CHECK(again.pointer == p);
      CHECK(p->use_count() == 3);
    }
    CHECK(p->use_count() == 2);
    wq_test::run_ready(io);
    CHECK(obs.runs == 1);
    CHECK(p->use_count() == 1);
  }

  SECTION("two members: each pending member holds its own reference") {
    REQUIRE(q.enqueue<&intrusive_item::w>(p).queued());
    REQUIRE(q.enqueue<&intrusive_item::other>(p).queued());
    CHECK(p->use_count() == 3);
    wq_test::run_ready(io);
    CHECK(obs.runs == 2);
    CHECK(p->use_count() == 1);
  }
}

// ---- raw pointers ----------------------------------------------------------------------------

TEST_CASE("work_pointer: a raw pointer is passed through, the caller owns the object",
          "[work_pointer][raw]") {
  observation obs;
  boost::asio::io_context io;
  raw_item item{obs};
  wq::workqueue q{io.get_executor(), "raw"};
  wq_test::drive_on_exit drive{io};

  auto r = q.enqueue<&raw_item::w>(&item);
  REQUIRE(r.status == wq::queue_status::queued);
  CHECK(r.pointer == nullptr);
  auto again = q.enqueue<&raw_item::w>(&item);
  CHECK(again.status == wq::queue_status::already_pending);
  CHECK(again.pointer == &item);
  wq_test::run_ready(io);
  CHECK(obs.runs == 1);
  CHECK(obs.object == &item);
}

// ---- members declared in a base class -------------------------------------------------------

// The work members live in a base that is not the first base of the pointee, so the object's
// address differs from the member's class address: the trampolines must undo that offset.
struct first_base {
  virtual ~first_base() = default;
  long padding[3] = {1, 2, 3};
};

struct work_base {
  wq::work w;
  wq::shared_work sw;
};

struct derived_item : first_base, work_base, wq_test::counted {
  explicit derived_item(lifetime_counter& c, observation& o) : counted(c), obs(o) {}
  observation& obs;
  static void run(std::unique_ptr<derived_item> self, wq::id<&work_base::w>) noexcept {
    self->obs.object = self.get();
    ++self->obs.runs;
  }
  static void run(std::shared_ptr<derived_item> self, wq::id<&work_base::sw>) noexcept {
    self->obs.object = self.get();
    ++self->obs.runs;
  }
};

TEST_CASE("work_pointer: the work member may be declared in a non-first base of the pointee",
          "[work_pointer][unique][shared]") {
  lifetime_counter counter;
  observation obs;
  {
    wq::workqueue q{"base-member"};

    auto u = std::make_unique<derived_item>(counter, obs);
    const void* u_address = u.get();
    REQUIRE(static_cast<const void*>(static_cast<work_base*>(u.get())) != u_address);
    REQUIRE(q.enqueue<&work_base::w>(std::move(u)).queued());
    q.drain();
    CHECK(obs.runs == 1);
    CHECK(obs.object == u_address);

    auto s = std::make_shared<derived_item>(counter, obs);
    REQUIRE(q.enqueue<&work_base::sw>(s).queued());
    q.drain();
    CHECK(obs.runs == 2);
    CHECK(obs.object == s.get());
    CHECK(s.use_count() == 1);
  }
  CHECK(counter.constructed.load() == 2);
  CHECK(counter.alive() == 0);
}

// ---- a refusing queue hands the pointer back -------------------------------------------------

TEST_CASE("work_pointer: a destroyed queue rejects the item and hands every pointer type back",
          "[work_pointer][rejected]") {
  lifetime_counter counter;
  observation obs;
  wq::workqueue dead{"dead"};
  dead.destroy();
  wq::workqueue alive{"alive"};

  SECTION("std::unique_ptr") {
    auto p = std::make_unique<unique_item>(counter, obs);
    const void* address = p.get();
    auto r = dead.enqueue<&unique_item::w>(std::move(p));
    CHECK(r.status == wq::queue_status::rejected);
    CHECK_FALSE(r);
    REQUIRE(r.pointer != nullptr);
    CHECK(r.pointer.get() == address);
    CHECK(counter.alive() == 1);
    CHECK_FALSE(r.pointer->w.is_pending());
    // The item is idle again: another queue takes it.
    REQUIRE(alive.enqueue<&unique_item::w>(std::move(r.pointer)).queued());
    alive.drain();
    CHECK(obs.runs == 1);
    CHECK(counter.alive() == 0);
  }

  SECTION("std::unique_ptr, delayed") {
    auto r =
        dead.enqueue_delayed<&unique_item::d>(std::make_unique<unique_item>(counter, obs), 10ms);
    CHECK(r.status == wq::queue_status::rejected);
    REQUIRE(r.pointer != nullptr);
    CHECK_FALSE(r.pointer->d.is_pending());
    CHECK(counter.alive() == 1);
    r.pointer.reset();
    CHECK(counter.alive() == 0);
  }

  SECTION("std::shared_ptr") {
    auto p = std::make_shared<shared_item>(counter, obs);
    {
      auto r = dead.enqueue<&shared_item::w>(p);
      CHECK(r.status == wq::queue_status::rejected);
      CHECK(r.pointer == p);
      CHECK(p.use_count() == 2);
      CHECK_FALSE(p->w.is_pending());
    }
    CHECK(p.use_count() == 1);
    REQUIRE(alive.enqueue<&shared_item::w>(p).queued());
    alive.drain();
    CHECK(obs.runs == 1);
    CHECK(p.use_count() == 1);
  }

  SECTION("boost::intrusive_ptr") {
    boost::intrusive_ptr<intrusive_item> p{new intrusive_item(counter, obs)};
    {
      auto r = dead.enqueue<&intrusive_item::w>(p);
      CHECK(r.status == wq::queue_status::rejected);
      CHECK(r.pointer == p);
      CHECK(p->use_count() == 2);
    }
    CHECK(p->use_count() == 1);
    CHECK_FALSE(p->w.is_pending());
  }

  SECTION("raw pointer") {
    raw_item item{obs};
    auto r = dead.enqueue<&raw_item::w>(&item);
    CHECK(r.status == wq::queue_status::rejected);
    CHECK(r.pointer == &item);
    CHECK_FALSE(item.w.is_pending());
    CHECK(obs.runs == 0);
  }

  alive.drain();
  CHECK(counter.alive() == 0);
}

// ---- a user specialisation -------------------------------------------------------------------

/// A tiny pool of slots handing out move-only handles; a handle returns its slot on destruction.
/// Stands for any user smart pointer wq knows nothing about.
struct pooled;

struct slot_pool {
  std::atomic<int> returned{0};
  void give_back(pooled*) noexcept { returned.fetch_add(1); }
};

class pool_handle {
 public:
  pool_handle() noexcept = default;  // enqueue_result<P> holds an empty P when queued
  pool_handle(pooled* p, slot_pool* pool) noexcept : p_(p), pool_(pool) {}
  pool_handle(pool_handle&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), pool_(std::exchange(o.pool_, nullptr)) {}
  pool_handle& operator=(pool_handle&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      pool_ = std::exchange(o.pool_, nullptr);
    }
    return *this;
  }
  ~pool_handle() { reset(); }

  pooled* get() const noexcept { return p_; }
  pooled* operator->() const noexcept { return p_; }
  slot_pool* pool() const noexcept { return pool_; }
  /// Gives up ownership without returning the slot.
  pooled* release() noexcept {
    pool_ = nullptr;
    return std::exchange(p_, nullptr);
  }
  void reset() noexcept {
    if (p_ != nullptr && pool_ != nullptr) pool_->give_back(p_);
    p_ = nullptr;
    pool_ = nullptr;
  }

 private:
  pooled* p_ = nullptr;
  slot_pool* pool_ = nullptr;
};

struct pooled {
  slot_pool* home = nullptr;
  wq::work w;
  std::atomic<int> runs{0};
  static void run(pool_handle self, wq::id<&pooled::w>) noexcept { self->runs.fetch_add(1); }
};

}  // namespace

template <>
struct wq::work_pointer_traits<pool_handle> {
  using element_type = pooled;
  static constexpr bool unique = true;
  static pooled* get(const pool_handle& p) noexcept { return p.get(); }
  template <class Field>
  static void release(pool_handle&& p, Field&) noexcept {
    // The queue keeps only the object pointer; the slot's home is recorded in the object.
    (void)p.release();
  }
  template <class Field>
  static pool_handle reclaim(pooled* obj, Field&) noexcept {
    return pool_handle{obj, obj->home};
  }
};

namespace {

static_assert(wq::work_pointer<pool_handle>);

TEST_CASE("work_pointer: a user specialisation of work_pointer_traits carries a custom handle",
          "[work_pointer][custom]") {
  slot_pool pool;
  pooled obj;
  obj.home = &pool;

  SECTION("queued: run receives the handle, and the slot comes back exactly once") {
    {
      wq::workqueue q{"custom"};
      auto r = q.enqueue<&pooled::w>(pool_handle{&obj, &pool});
      CHECK(r.status == wq::queue_status::queued);
      CHECK(r.pointer.get() == nullptr);
      q.drain();
    }
    CHECK(obj.runs.load() == 1);
    CHECK(pool.returned.load() == 1);
  }

  SECTION("rejected: the handle comes back, still owning the slot") {
    wq::workqueue q{"custom-dead"};
    q.destroy();
    {
      auto r = q.enqueue<&pooled::w>(pool_handle{&obj, &pool});
      CHECK(r.status == wq::queue_status::rejected);
      CHECK(r.pointer.get() == &obj);
      CHECK(r.pointer.pool() == &pool);
      CHECK(pool.returned.load() == 0);
    }
    CHECK(pool.returned.load() == 1);
    CHECK(obj.runs.load() == 0);
  }
}

}  // namespace
