// expect-error: must use a wq::shared_work or wq::shared_delayed_work member
// A std::shared_ptr-owned item needs room in the item for the queue's reference.
#include <memory>

#include <wq/workqueue.hpp>

struct item {
#ifdef WQ_COMPILE_FAIL_CONTROL
  wq::shared_work w;
#else
  wq::work w;
#endif
  static void run(std::shared_ptr<item>, wq::id<&item::w>) noexcept {}
};

void f(wq::workqueue& q) { (void)q.enqueue<&item::w>(std::make_shared<item>()); }
