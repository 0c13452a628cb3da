// SPDX-License-Identifier: BSL-1.0
// The kernel's rcu_work names (README's names table), written the kernel's way against an
// installed wq and Debian's liburcu (memb flavour). Built by the install smoke test when liburcu
// is found; it runs and prints "rcu snippet ok".
#include <urcu/urcu-memb.h>

#include <wq/rcu_work.hpp>
#include <wq/wq.hpp>

#include <atomic>
#include <cstdio>
#include <memory>

namespace {

struct my_object {
  std::atomic<int> freed{0};
  wq::rcu_work free_work{wq::fn_ops<&my_object::free_fn>, urcu_memb_flavor};  // INIT_RCU_WORK

  static void free_fn(wq::work* w) noexcept {
    my_object* obj = wq::container_of<&my_object::free_work>(wq::to_rcu_work(w));  // to_rcu_work
    obj->freed.fetch_add(1);
  }
};

}  // namespace

int main() {
  urcu_memb_register_thread();  // call_rcu's callers are registered threads (liburcu's rule)
  std::unique_ptr<wq::workqueue> q = wq::alloc_workqueue("rcu%d", wq::queue_flags{}, 0, 1);
  my_object obj;
  bool ok = wq::queue_rcu_work(*q, obj.free_work);    // queue_rcu_work
  ok = ok && !wq::queue_rcu_work(*q, obj.free_work);  // pending: false
  ok = ok && wq::flush_rcu_work(obj.free_work);       // flush_rcu_work: was pending
  ok = ok && obj.freed.load() == 1 && !obj.free_work.is_pending();
  ok = ok && !wq::destroy_workqueue(q);
  urcu_memb_unregister_thread();
  if (!ok) {
    std::printf("FAILED: rcu snippet\n");
    return 1;
  }
  std::printf("rcu snippet ok\n");
  return 0;
}
