// expect-error: the member m is not a wq::work
// Queueing a member that is not a work item is a compile error (issue 2, misuse 1).
#include <wq/workqueue.hpp>

struct item {
  int counter = 0;
  wq::work w;
  static void run(item*, wq::id<&item::w>) noexcept {}
  static void run(item*, wq::id<&item::counter>) noexcept {}
};

void f(wq::workqueue& q, item* p) {
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue<&item::w>(p);
#else
  (void)q.enqueue<&item::counter>(p);
#endif
}
