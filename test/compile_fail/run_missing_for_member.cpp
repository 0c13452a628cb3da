// expect-error: no `run` for wq::id<&C::m>: declare exactly one `static void run
// A class with two work members needs one `run` per member: queueing the member that has none
// is a compile error naming the missing overload (the other member's `run` does not count).
#include <wq/workqueue.hpp>

struct item {
  wq::work a;
  wq::work b;
  static void run(item*, wq::id<&item::a>) noexcept {}
#ifdef WQ_COMPILE_FAIL_CONTROL
  static void run(item*, wq::id<&item::b>) noexcept {}
#endif
};

void f(wq::workqueue& q, item* p) { (void)q.enqueue<&item::b>(p); }
