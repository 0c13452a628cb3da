// SPDX-License-Identifier: BSL-1.0
// wq/detail/core.hpp: the non-template queue engine's interface, used by the template layer.
// The engine itself (queue_core) lives in src/. Nothing here is a user contract.
//
// A queue is named by a 36-bit id (registry index and generation) stored in its items' state
// words. Every handle that can act on a queue (the workqueue object, each copy of its executor,
// each worker handler, each async wait registered on it) holds a reference on its core, and a
// retired core is freed only once none is left, so a handle never sees its queue's generation
// come round again. An item or a timer completion that outlives its queue resolves the id
// through the registry, which pins the core at that index for the lookup (and has none once
// it is freed): it finds no core, or one whose generation no longer matches, and leaves it
// alone instead of touching freed memory.
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

#include <wq/detail/engine.hpp>
#include <wq/detail/handler_memory.hpp>

namespace wq::detail {

struct queue_core;

/// True while this thread is inside executor_box::post. Its callers (under the queue mutex, or
/// post_claimed just after releasing it) keep or undo the handler's accounting themselves if
/// the post throws (out of memory for the handler's operation); a live handler the failed post
/// destroys must then neither take that mutex again (self-deadlock) nor account for itself a
/// second time.
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
  ~executor_box() { release_executor(); }

  /// Ends the outstanding work held on the executor and destroys the stored copy; afterwards
  /// the box refers to no executor (every hook is null). Used when the executor's context is
  /// shut down (src/context_watch.cpp), and by the destructor. Requires: the queue's mutex, or
  /// sole ownership of the box.
  void release_executor() noexcept {
    if (tracking) track(this, false);
    if (destroy != nullptr) destroy(storage);
    destroy = nullptr;
    post = nullptr;
    held_here = nullptr;
    track = nullptr;
    stopped = nullptr;
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

}  // namespace wq::detail
