// SPDX-License-Identifier: BSL-1.0
// wq/shared_work.hpp: `shared_work` and `shared_delayed_work`, work items for objects owned by
// std::shared_ptr (Rust's `Arc<T>`).
//
// While such an item is pending the queue holds one std::shared_ptr reference to the object.
// std::shared_ptr cannot be turned into a raw pointer and back (it has no into_raw), so these
// items carry 16 bytes of storage where that reference lives while the item is pending. Use
// them for shared_ptr-owned objects; plain `work`/`delayed_work` serve raw pointers,
// std::unique_ptr and boost::intrusive_ptr, whose ownership fits in the object pointer itself.
//
// Thread safety and lifetime: as for `work` and `delayed_work`. The stored reference is written
// by the thread that wins PENDING and moved out by the worker (or by a canceller) that clears it.
// Like `delayed_work{io}`, `shared_delayed_work{io}` puts the item's timer on the application's
// io_context, which must then outlive the item.
//
// Only the typed API can queue these items, since only it hands over the std::shared_ptr that
// `run` receives: the untyped calls that would queue one without a pointer (`queue_work`,
// `queue_delayed_work`, `workqueue::queue` / `queue_delayed`, the untyped `mod_delayed_work`
// and `enable_and_queue_work`) do not compile on them; use `q.enqueue<&T::m>(ptr)`,
// `q.enqueue_delayed<&T::m>(ptr, delay)` or `wq::mod_delayed_work<&T::m>(q, ptr, delay)`.
#pragma once

#include <wq/config.hpp>

#include <memory>
#include <type_traits>

#include <boost/asio/io_context.hpp>

#include <wq/delayed_work.hpp>
#include <wq/detail/shared_ref_slot.hpp>
#include <wq/work.hpp>

namespace wq {

/// A `work` for objects owned by std::shared_ptr: 48 bytes.
class shared_work : public work {
 public:
  shared_work() noexcept = default;
  shared_work(const shared_work&) = delete;
  shared_work& operator=(const shared_work&) = delete;

 private:
  friend struct detail::work_access;
  detail::shared_ref_slot ref_;
};

/// A `delayed_work` for objects owned by std::shared_ptr.
class shared_delayed_work : public delayed_work {
 public:
  /// Constructs an idle item whose timer runs on wq's timer thread.
  shared_delayed_work() = default;

  /// Constructs an idle item whose timer runs on `timer_context` (the application's
  /// io_context) instead of wq's timer thread, as `delayed_work{io}` does: its expiries are
  /// processed only while, and on the threads where, that context runs (delayed_work.hpp).
  /// Preconditions: `timer_context` outlives the item.
  /// Throws: std::bad_alloc (the anchor shared with an outstanding timer wait).
  /// Note: while the item is armed, the queue's reference to the object is held in the item, so
  /// the object (and the item) stays alive until the context has processed the expiry and the
  /// item has run, or until the item is cancelled. An armed item on a context that is no longer
  /// run keeps its object alive until it is cancelled (or its queue destroyed).
  explicit shared_delayed_work(boost::asio::io_context& timer_context)
      : delayed_work(timer_context) {}

  shared_delayed_work(const shared_delayed_work&) = delete;
  shared_delayed_work& operator=(const shared_delayed_work&) = delete;

 private:
  friend struct detail::work_access;
  detail::shared_ref_slot ref_;
};

namespace detail {
/// Whether `Item` is a shared_work or shared_delayed_work (or derived from one): an item whose
/// queue reference lives in the item, so that only the typed API can store it. The untyped
/// queueing calls have overloads constrained on this that do not compile.
template <class Item>
concept shared_item = std::is_base_of_v<shared_work, std::remove_cv_t<Item>> ||
    std::is_base_of_v<shared_delayed_work, std::remove_cv_t<Item>>;

/// false, but only once `T` is known: lets a static_assert fire when a template is used.
template <class T>
inline constexpr bool dependent_false = false;
}  // namespace detail

}  // namespace wq
