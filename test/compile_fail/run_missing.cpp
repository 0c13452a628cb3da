// expect-error: the object's class has no `run` function
// A class whose work member is queued through the typed API must declare a `run`.
#include <wq/workqueue.hpp>

struct item {
  wq::work w;
#ifdef WQ_COMPILE_FAIL_CONTROL
  static void run(item*, wq::id<&item::w>) noexcept {}
#endif
};

void f(wq::workqueue& q, item* p) { (void)q.enqueue<&item::w>(p); }
