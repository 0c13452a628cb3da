// expect-error: the `run` for wq::id<&C::m> is not noexcept
// Work functions are noexcept by contract (an escaping exception would terminate a worker).
#include <wq/workqueue.hpp>

struct item {
  wq::work w;
#ifdef WQ_COMPILE_FAIL_CONTROL
  static void run(item*, wq::id<&item::w>) noexcept {}
#else
  static void run(item*, wq::id<&item::w>) {}
#endif
};

void f(wq::workqueue& q, item* p) { (void)q.enqueue<&item::w>(p); }
