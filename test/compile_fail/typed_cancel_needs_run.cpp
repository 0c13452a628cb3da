// expect-error: no `run` for wq::id<&C::m>: declare exactly one `static void run
// The typed cancel deduces its pointer type from the `run` the class declares for the member:
// without one there is nothing to deduce, and the error says which `run` is missing (not "no
// matching function").
#include <memory>

#include <wq/cancel.hpp>

struct item {
  wq::shared_work a;
  wq::shared_work b;
  static void run(std::shared_ptr<item>, wq::id<&item::a>) noexcept {}
#ifdef WQ_COMPILE_FAIL_CONTROL
  static void run(std::shared_ptr<item>, wq::id<&item::b>) noexcept {}
#endif
};

void f(item& obj) { (void)wq::cancel_work<&item::b>(obj); }
