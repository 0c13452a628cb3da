// SPDX-License-Identifier: BSL-1.0
// wq/detail/core.hpp: the non-template queue engine's interface, used by the template layer.
// The engine itself (queue_core) lives in src/. Nothing here is a user contract.
//
// Queue cores are type-stable: they are allocated in chunks, never freed, and recycled with a
// new generation when a queue is destroyed. A queue is named by a 36-bit id (slot index and
// generation) stored in its items' state words, so an item, a timer completion or a worker
// handler that outlives its queue finds a core whose generation no longer matches and leaves it
// alone, instead of touching freed memory. Every handle that can act on a queue (the workqueue
// object, each copy of its executor, each worker handler) holds a reference on its core, and a
// retired core is recycled only once none is left: a handle never sees its queue's generation
// come round again, however many queues are created and destroyed meanwhile.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <wq/delayed_work.hpp>
#include <wq/detail/handler_memory.hpp>
#include <wq/detail/work_access.hpp>
#include <wq/diagnostics.hpp>
#include <wq/flags.hpp>
#include <wq/observer.hpp>
#include <wq/queue_status.hpp>
#include <wq/work.hpp>

namespace wq::detail {

struct queue_core;

/// Runs up to a budget of items for worker slot `slot` of `core`, if `core` still has
/// generation `gen`. Defined in src/workqueue.cpp.
void run_worker(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept;
/// Accounts for a worker handler destroyed without being invoked: the executor was shut down or
/// destroyed, so it will never run the queue's items; they are dropped (references released).
void worker_handler_dropped(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept;

/// True while this thread is inside executor_box::post. Both callers hold the queue mutex and,
/// if the post throws (out of memory for the handler's operation), keep or undo the handler's
/// accounting themselves; a live handler the failed post destroys must then neither take that
/// mutex again (self-deadlock) nor account for itself a second time.
inline thread_local bool posting_worker = false;

/// The function object wq posts to a queue's executor: one per active worker slot.
class worker_handler {
 public:
  using allocator_type = handler_allocator<void>;

  worker_handler(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept
      : core_(core), gen_(gen), slot_(slot) {}
  worker_handler(worker_handler&& other) noexcept
      : core_(other.core_),
        gen_(other.gen_),
        slot_(other.slot_),
        live_(std::exchange(other.live_, false)) {}
  worker_handler& operator=(worker_handler&&) = delete;
  ~worker_handler() {
    if (live_ && !posting_worker) worker_handler_dropped(core_, gen_, slot_);
  }

  allocator_type get_allocator() const noexcept { return {}; }

  void operator()() noexcept {
    live_ = false;
    run_worker(core_, gen_, slot_);
  }

 private:
  queue_core* core_;
  std::uint32_t gen_;
  std::uint32_t slot_;
  bool live_ = true;  // false once invoked or moved from
};

/// Whether E is an Asio strand (its handlers never run concurrently).
template <class E>
struct is_strand : std::false_type {};
template <class E>
struct is_strand<boost::asio::strand<E>> : std::true_type {};

/// Calls `f(strand)` with the strand an any_io_executor wraps, if it wraps one of Asio's strands
/// of an io_context, a thread_pool or an any_io_executor (what `socket.get_executor()` gives for
/// a socket made on a strand), and returns whether it did.
template <class F>
bool visit_strand(const boost::asio::any_io_executor& ex, F&& f) {
  using boost::asio::strand;
  if (auto* s = ex.target<strand<boost::asio::io_context::executor_type>>()) {
    f(*s);
    return true;
  }
  if (auto* s = ex.target<strand<boost::asio::thread_pool::executor_type>>()) {
    f(*s);
    return true;
  }
  if (auto* s = ex.target<strand<boost::asio::any_io_executor>>()) {
    f(*s);
    return true;
  }
  return false;
}

/// The io_context an executor submits to (directly, through a strand, or behind an
/// any_io_executor), or nullptr if it is not one wq can tell.
template <class E>
const boost::asio::io_context* io_context_of(const E& ex) noexcept {
  if constexpr (requires { ex.get_inner_executor(); }) {  // a strand
    return io_context_of(ex.get_inner_executor());
  } else if constexpr (requires(const boost::asio::io_context& c) {
                         { ex.context() } -> std::same_as<boost::asio::io_context&>;
                       }) {
    return &ex.context();
  } else if constexpr (std::is_same_v<E, boost::asio::any_io_executor>) {
    using io_ex = boost::asio::io_context::executor_type;
    if (auto* t = ex.template target<io_ex>()) return &t->context();
    if (auto* t = ex.template target<boost::asio::strand<io_ex>>())
      return &t->get_inner_executor().context();
    return nullptr;
  } else {
    return nullptr;
  }
}

/// A type-erased executor that posts worker handlers with their associated allocator preserved
/// (an any_io_executor would drop the allocator and allocate per post), and that can hold
/// outstanding work on the executor while the queue has work (see track).
struct executor_box {
  alignas(std::max_align_t) unsigned char storage[96];
  // A copy of the executor with outstanding_work.tracked, constructed while `tracking`.
  alignas(std::max_align_t) unsigned char tracked_storage[96];
  void (*post)(void* ex, worker_handler&& h) = nullptr;
  void (*destroy)(void* ex) noexcept = nullptr;
  // For strands: whether the calling thread runs a handler of this strand now, so nothing
  // else can (a blocking wait there would deadlock, §5.3). nullptr for other executors.
  bool (*held_here)(const void* ex) noexcept = nullptr;
  // Starts (true) or ends (false) outstanding work on the executor: the queue has queued,
  // inactive, running or armed items (Asio's convention: they keep run() from returning).
  // nullptr for an executor nobody runs by hand (a queue's own pool).
  void (*track)(executor_box* self, bool on) noexcept = nullptr;
  // Whether the executor's execution context is an io_context that is stopped (its queued
  // handlers cannot run until it is restarted). nullptr for a queue's own pool.
  bool (*stopped)(const void* ex) noexcept = nullptr;
  bool tracking = false;  // tracked_storage holds a tracked copy; guarded by the queue mutex

  executor_box() = default;
  executor_box(const executor_box&) = delete;
  executor_box& operator=(const executor_box&) = delete;
  ~executor_box() {
    if (tracking) track(this, false);
    if (destroy != nullptr) destroy(storage);
  }

  /// Stores `ex`. With `track_work`, the queue holds outstanding work on it while busy.
  template <class Executor>
  void emplace(const Executor& ex, bool track_work = false) {
    static_assert(sizeof(Executor) <= sizeof(storage) &&
                  alignof(Executor) <= alignof(std::max_align_t));
    ::new (static_cast<void*>(storage)) Executor(ex);
    // Safety: storage holds an Executor constructed just above until destroy() runs.
    post = [](void* p, worker_handler&& h) {
      struct posting {
        posting() noexcept { posting_worker = true; }
        ~posting() { posting_worker = false; }
      } scope;
      boost::asio::post(*std::launder(static_cast<Executor*>(p)), std::move(h));
    };
    destroy = [](void* p) noexcept { std::launder(static_cast<Executor*>(p))->~Executor(); };
    if constexpr (is_strand<Executor>::value) {
      held_here = [](const void* p) noexcept {
        return std::launder(static_cast<const Executor*>(p))->running_in_this_thread();
      };
    } else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
      // A strand behind the type erasure (a socket's executor) is held here just the same.
      held_here = [](const void* p) noexcept {
        bool held = false;
        (void)visit_strand(*std::launder(static_cast<const Executor*>(p)),
                           [&held](const auto& s) { held = s.running_in_this_thread(); });
        return held;
      };
    }
    if (track_work) {
      stopped = [](const void* p) noexcept {
        const boost::asio::io_context* io =
            io_context_of(*std::launder(static_cast<const Executor*>(p)));
        return io != nullptr && io->stopped();
      };
      using tracked_t = std::decay_t<decltype(boost::asio::prefer(
          ex, boost::asio::execution::outstanding_work.tracked))>;
      static_assert(sizeof(tracked_t) <= sizeof(tracked_storage) &&
                    alignof(tracked_t) <= alignof(std::max_align_t));
      track = [](executor_box* self, bool on) noexcept {
        // Safety: storage holds an Executor (see above); tracked_storage holds a tracked_t
        // exactly while `tracking`.
        if (on) {
          try {
            ::new (static_cast<void*>(self->tracked_storage)) tracked_t(boost::asio::prefer(
                *std::launder(static_cast<const Executor*>(static_cast<void*>(self->storage))),
                boost::asio::execution::outstanding_work.tracked));
            self->tracking = true;
          } catch (...) {
            // Out of memory copying a type-erased executor: the queue's work does not hold the
            // executor's run() this time; the next idle-to-busy edge tries again.
          }
        } else {
          self->tracking = false;
          std::launder(static_cast<tracked_t*>(static_cast<void*>(self->tracked_storage)))
              ->~tracked_t();
        }
      };
    }
  }
};

/// Parameters of a new queue core.
struct core_config {
  std::string name;
  /// The pool the queue owns, if any: kept until the core is recycled, so that executors of the
  /// queue that outlive it still name a valid execution context.
  std::unique_ptr<boost::asio::thread_pool> own_pool;
  queue_flags flags = queue_flags::none;
  int max_active = 0;        // already clamped
  int max_workers = 1;       // concurrent worker handlers, <= max_active and <= slot_cap
  int worker_slots = 1;      // slots allocated up front
  int slot_cap = 1;          // most workers the queue can ever run at once (set_max_active)
  bool shared_pool = false;  // runs on the process-wide pool chosen by `flags` (wq/pool.hpp)
};

/// Creates a core (recycling a retired one if possible) that posts to `ex`.
/// Returns the core and its id; the caller holds the core's first reference (release it with
/// release_core). Throws std::bad_alloc.
std::pair<queue_core*, std::uint64_t> create_core(core_config cfg,
                                                  std::unique_ptr<executor_box> ex);

/// Takes one more reference on a core the caller already holds one on.
/// Thread safety: any thread. Memory ordering: relaxed (a reference is only ever copied from
/// another one, which keeps the core from being recycled meanwhile).
void acquire_core(queue_core* core) noexcept;
/// Drops one reference; the last one recycles a retired core (and frees the pool it owned).
/// Thread safety: any thread, but never while holding a queue mutex.
void release_core(queue_core* core) noexcept;

/// Counts one more copy of the queue's executor with outstanding_work.tracked: while any exists
/// the queue holds outstanding work on the executor it runs on (if that is a user's executor).
/// Thread safety: any thread not holding the queue's mutex; takes it on the 0 -> 1 edge.
void add_tracked(queue_core* core) noexcept;
/// Counts one copy fewer (see add_tracked); takes the queue's mutex on the 1 -> 0 edge.
void remove_tracked(queue_core* core) noexcept;

/// Formats a message and passes it with `code` to the diagnostic handler (diagnostics.hpp).
[[gnu::format(printf, 2, 3)]] void report(errc code, const char* fmt, ...) noexcept;

// ---- claiming PENDING (the kernel's test_and_set_bit(WORK_STRUCT_PENDING)) ----------------

enum class claim_result { claimed, already_pending, disabled };

/// Tries to make the caller the owner of `w`'s pending instance.
inline claim_result claim_pending(work& w) noexcept {
  auto& st = work_access::state(w);
  // Safety (ordering): a read-modify-write with release semantics even when the bit was already
  // set, so the worker's acq_rel clear of PENDING (which comes later in the modification order)
  // synchronises with it and sees every store made before this call (rule 7). Acquire pairs
  // with the worker's clear so that a successful claim sees the previous run's effects on the
  // item (rule 2).
  const state_t old = st.fetch_or(st_pending, std::memory_order_acq_rel);
  if ((old & st_pending) != 0) return claim_result::already_pending;
  if (disable_count(old) != 0) {
    st.fetch_and(~st_pending, std::memory_order_release);
    return claim_result::disabled;
  }
  return claim_result::claimed;
}

/// Gives up a pending instance claimed with claim_pending that was not linked anywhere.
inline void unclaim_pending(work& w) noexcept {
  work_access::state(w).fetch_and(~st_pending, std::memory_order_release);
}

/// Links a claimed item on queue `id` (worklist or inactive list). Returns queued or rejected;
/// on rejected the caller still owns the claim and must unclaim it.
/// `where`, if given, is reported to the queue's observer (on_queued, under the queue lock so
/// that the item cannot have run yet).
queue_status link_claimed(queue_core* core, std::uint64_t id, work& w,
                          const location* where = nullptr, bool count = true) noexcept;

/// Arms a claimed delayed item for `delay` from now, targeting queue `id`. Returns queued or
/// rejected (as link_claimed).
queue_status arm_claimed(queue_core* core, std::uint64_t id, delayed_work& w,
                         std::chrono::nanoseconds delay, const location* where = nullptr,
                         bool count = true) noexcept;

}  // namespace wq::detail
