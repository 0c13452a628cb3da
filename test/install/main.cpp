// SPDX-License-Identifier: BSL-1.0
// The consumer smoke program: built against an installed wq (find_package(wq) + wq::wq), it
// queues an embedded item and a delayed item and checks both ran.
#include <wq/wq.hpp>

#include <cstdio>
#include <latch>

namespace {
struct job {
  wq::work now;
  wq::delayed_work later;
  std::latch* done = nullptr;
  static void run(job* self, wq::id<&job::now>) noexcept { self->done->count_down(); }
  static void run(job* self, wq::id<&job::later>) noexcept { self->done->count_down(); }
};
}  // namespace

int main() {
  using namespace wq::literals;
  std::latch done(2);
  job j;
  j.done = &done;
  wq::workqueue q{"consumer"};
  if (!q.enqueue<&job::now>(&j) || !q.enqueue_delayed<&job::later>(&j, 5_jiffies)) return 1;
  done.wait();
  std::printf("wq consumer ok\n");
  return 0;
}
