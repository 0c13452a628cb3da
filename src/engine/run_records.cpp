// SPDX-License-Identifier: BSL-1.0
// Run records and worker contexts: see run_records.hpp.
#include "run_records.hpp"

#include <cstdio>
#include <new>

#include <pthread.h>

namespace wq::detail {

worker_context& this_worker() noexcept {
  thread_local worker_context ctx;
  return ctx;
}

namespace {

std::atomic<run_record*> g_run_records{nullptr};
thread_local bool tl_run_record_gone = false;      // trivially destructible: valid during exit
thread_local run_record* tl_run_record = nullptr;  // this thread's record once claimed

// Allocates a record and links it at the head of the list (in use or free), or returns nullptr.
run_record* publish_run_record(bool in_use) noexcept {
  auto* r = new (std::nothrow) run_record;
  if (r == nullptr) return nullptr;
  r->in_use.store(in_use, std::memory_order_relaxed);
  r->next = g_run_records.load(std::memory_order_relaxed);
  // Safety (release): publishes r (and r->next) to walkers.
  while (!g_run_records.compare_exchange_weak(r->next, r, std::memory_order_release,
                                              std::memory_order_relaxed)) {
  }
  return r;
}

run_record* claim_run_record() noexcept {
  // Safety (acquire): pairs with the release that published each record's `next`.
  for (run_record* r = g_run_records.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    bool expected = false;
    if (!r->in_use.load(std::memory_order_relaxed) &&
        r->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire))
      return r;
  }
  return publish_run_record(true);
}

struct run_record_owner {
  run_record* rec = claim_run_record();
  ~run_record_owner() {
    tl_run_record_gone = true;
    tl_run_record = nullptr;
    if (rec == nullptr) return;
    rec->item.store(nullptr, std::memory_order_relaxed);
    // Safety (release): the next owner sees item == nullptr.
    rec->in_use.store(false, std::memory_order_release);
  }
};

}  // namespace

run_record* this_run_record() noexcept {
  if (tl_run_record_gone) return nullptr;
  thread_local run_record_owner owner;
  tl_run_record = owner.rec;
  return owner.rec;
}

run_record* claimed_run_record() noexcept { return tl_run_record; }

void reserve_run_records(std::size_t n) noexcept {
  std::size_t free = 0;
  // Safety (acquire): as claim_run_record.
  for (run_record* r = g_run_records.load(std::memory_order_acquire); r != nullptr; r = r->next)
    if (!r->in_use.load(std::memory_order_relaxed)) ++free;
  for (; free < n; ++free)
    if (publish_run_record(false) == nullptr) return;  // claimed (allocated) on first use then
}

run_record* first_run_record() noexcept { return g_run_records.load(std::memory_order_acquire); }

queue_core*& chained_for() noexcept {
  thread_local queue_core* core = nullptr;
  return core;
}

void rename_thread(worker_context& ctx, const char* desc) noexcept {
  if (!ctx.renamed) {
    if (::pthread_getname_np(::pthread_self(), ctx.saved_name, sizeof ctx.saved_name) != 0)
      return;  // cannot restore it afterwards: leave the name alone
    ctx.renamed = true;
  }
  char name[16];
  std::snprintf(name, sizeof name, "%s", desc);  // truncated to the platform's 15 characters
  (void)::pthread_setname_np(::pthread_self(), name);
}

void restore_thread_name(worker_context& ctx) noexcept {
  if (!ctx.renamed) return;
  ctx.renamed = false;
  (void)::pthread_setname_np(::pthread_self(), ctx.saved_name);
}

std::atomic<std::uint64_t>& hidden_runs() noexcept {
  static constinit std::atomic<std::uint64_t> word{0};
  return word;
}

}  // namespace wq::detail
