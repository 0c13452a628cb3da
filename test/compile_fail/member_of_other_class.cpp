// expect-error: the member belongs to another class than the object the pointer points to
// Naming a work member of one class while enqueueing an object of another is a compile error
// (issue 2, misuse 4).
#include <wq/workqueue.hpp>

struct other {
  wq::work w;
  static void run(other*, wq::id<&other::w>) noexcept {}
};

struct item {
  wq::work w;
  static void run(item*, wq::id<&item::w>) noexcept {}
};

void f(wq::workqueue& q, item* p, other* o) {
  (void)o;
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue<&item::w>(p);
#else
  (void)q.enqueue<&other::w>(p);
#endif
}
