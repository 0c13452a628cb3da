// SPDX-License-Identifier: BSL-1.0
// src/context_watch.cpp: the execution-context watch (see context_watch.hpp for its lock rules).
#include "context_watch.hpp"

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/backoff.hpp"
#include "engine/engine.hpp"
#include "engine/queue_core.hpp"
#include "engine/registry.hpp"

namespace wq::detail {

namespace {

/// The Asio service: one per execution context that a queue has run on.
class watch_service final : public boost::asio::execution_context::service {
 public:
  using key_type = watch_service;
  static inline boost::asio::execution_context::id id;

  explicit watch_service(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx), list_(std::make_shared<watch_list>()) {}

  [[nodiscard]] const std::shared_ptr<watch_list>& list() const noexcept { return list_; }

 private:
  // Called by the context's destructor (or shutdown), before its scheduler destroys the
  // handlers it holds: every queue still on the context drops its items now and never posts
  // to, or releases work on, the context again.
  void shutdown() override {
    // Completions being handed to the context by wq's threads finish first (the context is
    // still whole); later ones are destroyed unrun.
    // Safety (seq_cst): store, then load; enter_context_gate counts, then loads (see there).
    list_->closed.store(true, std::memory_order_seq_cst);
    for (unsigned spins = 0; list_->handing_off.load(std::memory_order_seq_cst) != 0; ++spins)
      backoff(spins);
    std::vector<std::pair<queue_core*, std::uint64_t>> cores;
    {
      std::lock_guard lk(list_->mu);
      list_->gone = true;
      cores.assign(list_->cores.begin(), list_->cores.end());
      list_->cores.clear();
    }
    // A queue may retire, and its core be freed, once it left the set: each is reached again
    // by its id, pinned, and its id checked under its mutex (executor_context_gone).
    for (const auto& entry : cores) {
      const std::uint64_t core_id = entry.second;
      if (const core_pin pin = lookup_core(core_id)) executor_context_gone(pin.get(), core_id);
    }
  }

  std::shared_ptr<watch_list> list_;
};

}  // namespace

void watch_context(boost::asio::execution_context& ctx, queue_core* core, std::uint64_t id) {
  const std::shared_ptr<watch_list> list = watch_list_of(ctx);
  {
    std::lock_guard lk(list->mu);
    if (!list->gone) list->cores.emplace(core, id);
  }
  std::lock_guard lk(core->mu);
  core->watch = list;
}

std::shared_ptr<watch_list> watch_list_of(boost::asio::execution_context& ctx) {
  return boost::asio::use_service<watch_service>(ctx).list();
}

void unwatch_context_locked(queue_core* core) noexcept {
  if (!core->watch) return;
  {
    std::lock_guard lk(core->watch->mu);
    core->watch->cores.erase(core);
  }
  core->watch.reset();
}

}  // namespace wq::detail
