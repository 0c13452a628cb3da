// SPDX-License-Identifier: BSL-1.0
// Delayed items: their construction and destruction, and the library's timer thread. Arming,
// expiry and the timer discipline are the engine's (src/engine/timers.hpp, engine.cpp).
#include <wq/delayed_work.hpp>

#include <wq/impl/claim.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>

#include "engine/queue_core.hpp"
#include "engine/timers.hpp"

namespace wq {
namespace detail {

namespace {

// wq's internal timer thread. Immortal: delayed items may be destroyed (and wait for their
// outstanding waits) during static destruction, so the thread must outlive them; it is never
// joined and runs only wq's own short, non-blocking completions.
struct timer_thread {
  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      ctx.get_executor()};
  std::thread thread{[this] { ctx.run(); }};
  timer_thread() { thread.detach(); }
};

}  // namespace

namespace {
std::atomic<boost::asio::io_context*> started_context{nullptr};  // set once by timer_context()
}  // namespace

boost::asio::io_context& timer_context() {
  static timer_thread* t = [] {
    auto* made = new timer_thread;  // Safety: intentionally leaked (see above).
    // Safety (release): pairs with started_timer_context's acquire.
    started_context.store(&made->ctx, std::memory_order_release);
    return made;
  }();
  return t->ctx;
}

boost::asio::io_context* started_timer_context() noexcept {
  return started_context.load(std::memory_order_acquire);
}

}  // namespace detail

delayed_work::delayed_work() : timer_(detail::timer_context()) {}

delayed_work::delayed_work(const work_ops& ops) : work(ops), timer_(detail::timer_context()) {}

delayed_work::delayed_work(boost::asio::io_context& timer_context)
    : timer_(timer_context), anchor_(new detail::timer_anchor) {
  anchor_->item = this;
}

delayed_work::delayed_work(const work_ops& ops, boost::asio::io_context& timer_context)
    : work(ops), timer_(timer_context), anchor_(new detail::timer_anchor) {
  anchor_->item = this;
}

delayed_work::~delayed_work() {
  // Before the timer goes: an armed instance is cancelled here (its wait then completes below).
  detail::check_destroy(*this);
  // An arming thread may still be starting a wait (the item was cancelled meanwhile): let it
  // finish with the timer first.
  detail::wait_timer_idle(*this);
  if (anchor_ != nullptr) {
    {
      // Waits for a completion that is running now; later ones find the item gone.
      std::lock_guard lk(anchor_->mu);
      anchor_->item = nullptr;
    }
    anchor_->release();
    return;  // the timer's destructor cancels an outstanding wait
  }
  // An outstanding wait is orphaned: its completion will not touch this object, and the
  // timer's destructor (next) cancels it, so nobody waits for the timer thread.
  detail::orphan_wait(*this);
}

}  // namespace wq
