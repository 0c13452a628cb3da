// expect-error: enqueue_delayed<&T::m>: the member m is a plain wq::work
// Delayed queueing of a member that has no timer is a compile error (issue 2, misuse 2).
#include <chrono>

#include <wq/workqueue.hpp>

struct item {
  wq::work w;
  wq::delayed_work d;
  static void run(item*, wq::id<&item::w>) noexcept {}
  static void run(item*, wq::id<&item::d>) noexcept {}
};

void f(wq::workqueue& q, item* p) {
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue_delayed<&item::d>(p, std::chrono::milliseconds(5));
#else
  (void)q.enqueue_delayed<&item::w>(p, std::chrono::milliseconds(5));
#endif
}
