// expect-error: no `run` for wq::id<&C::m>.*AFTER the member m in the class
// A `run` declared above the member it names does not compile: C++ does not allow naming a
// member before its declaration in a member function signature. The compiler's own error comes
// first, at the declaration, and is not ours to change (g++ 12: "incomplete type 'item' used in
// nested name specifier"; clang 14: "no member named 'w' in 'item'", or for a member called
// `flush`, "did you mean 'fflush'?"). wq's message follows and states the ordering rule; this
// test matches it. The control declares `run` after the member.
#include <memory>

#include <wq/workqueue.hpp>

struct item {
#ifdef WQ_COMPILE_FAIL_CONTROL
  wq::shared_work w;
  static void run(std::shared_ptr<item>, wq::id<&item::w>) noexcept {}
#else
  static void run(std::shared_ptr<item>, wq::id<&item::w>) noexcept {}
  wq::shared_work w;
#endif
};

void f(wq::workqueue& q) { (void)q.enqueue<&item::w>(std::make_shared<item>()); }
