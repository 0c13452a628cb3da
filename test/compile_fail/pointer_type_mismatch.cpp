// expect-error: taking exactly the pointer type you enqueue
// run() takes a std::shared_ptr but the caller enqueues a std::unique_ptr: a compile error,
// not a silent conversion (issue 2, misuse 3).
#include <memory>

#include <wq/workqueue.hpp>

struct item {
  wq::shared_work w;
  static void run(std::shared_ptr<item>, wq::id<&item::w>) noexcept {}
};

void f(wq::workqueue& q) {
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue<&item::w>(std::make_shared<item>());
#else
  (void)q.enqueue<&item::w>(std::make_unique<item>());
#endif
}
