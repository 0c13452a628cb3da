// SPDX-License-Identifier: BSL-1.0
// wq/impl/executor.hpp: template bodies of wq/executor.hpp: the box a function submitted
// through a queue_executor runs in, and detail::submit.
#pragma once

// Part of <wq/executor.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_EXECUTOR_HPP_DECLARED
#error "<wq/impl/executor.hpp> is part of <wq/executor.hpp>: include <wq/executor.hpp>"
#endif

#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/recycling_allocator.hpp>

#include <wq/container_of.hpp>
#include <wq/detail/engine.hpp>
#include <wq/impl/claim.hpp>
#include <wq/queue_status.hpp>
#include <wq/work.hpp>

namespace wq::detail {

/// A function submitted through a queue_executor, boxed in a work item.
template <class F>
struct closure_box {
  work item;
  F fn;

  using allocator = typename std::allocator_traits<
      boost::asio::recycling_allocator<void>>::template rebind_alloc<closure_box>;

  template <class G>
  explicit closure_box(G&& g) : item(ops), fn(std::forward<G>(g)) {}

  static closure_box* from(work* w) noexcept {
    // Safety: container_of: every item running these ops is the `item` member of a
    // closure_box<F> (the ops are private to this type).
    return container_of<&closure_box::item>(w);
  }
  static void destroy(closure_box* self) noexcept {
    allocator a;
    std::allocator_traits<allocator>::destroy(a, self);
    std::allocator_traits<allocator>::deallocate(a, self, 1);
  }
  static void run(work* w) noexcept {
    closure_box* self = from(w);
    begin_run(w);
    // Free the box before the call, so the function may submit again and reuse the memory.
    F local(std::move(self->fn));
    destroy(self);
    std::move(local)();
  }
  static void drop(work* w) noexcept {
    clear_pending(w);
    destroy(from(w));
  }
  static constexpr work_ops ops{&run, &drop, "wq::queue_executor function", true};
};

template <class F>
void submit(queue_core* core, std::uint64_t id, F&& f) {
  using box = closure_box<std::decay_t<F>>;
  typename box::allocator a;
  box* p = std::allocator_traits<typename box::allocator>::allocate(a, 1);
  try {
    std::allocator_traits<typename box::allocator>::construct(a, p, std::forward<F>(f));
  } catch (...) {
    std::allocator_traits<typename box::allocator>::deallocate(a, p, 1);
    throw;
  }
  (void)claim_pending(p->item);  // a new item: always claimed
  // Refused only by a queue that is dying or gone (or whose executor is dead): the function is
  // then destroyed unrun, as Asio destroys what is posted to a context shut down.
  if (link_submitted(core, id, p->item) != queue_status::queued) box::drop(&p->item);
}

}  // namespace wq::detail
