// expect-error: takes another pointer type than the one you pass.*run_takes_the_pointer_you_pass<std::shared_ptr<item>, std::unique_ptr<item|run_takes_the_pointer_you_pass<std::shared_ptr<item>, std::unique_ptr<item.*takes another pointer type than the one you pass
// run() takes a std::shared_ptr but the caller enqueues a std::unique_ptr: a compile error,
// not a silent conversion (issue 2, misuse 3). The message names both types through the helper
// run_takes_the_pointer_you_pass<RunTakes, YouPass> (g++ prints it in a note after the message,
// clang in the requirement before it).
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
