// expect-error: queue_delayed_work / workqueue::queue_delayed on a wq::shared_work.*use q.enqueue_delayed<&T::m>\(ptr, delay\)
// workqueue::queue_delayed on a shared_delayed_work member does not compile (issue 13).
// The item holds a std::shared_ptr that only the typed form hands over, so the untyped call is
// a compile error telling the user which typed form to use (the control uses it).
#include <chrono>
#include <memory>

#include <wq/cancel.hpp>
#include <wq/workqueue.hpp>

struct session {
  wq::shared_work flush;
  wq::shared_delayed_work timeout;
  static void run(std::shared_ptr<session>, wq::id<&session::flush>) noexcept {}
  static void run(std::shared_ptr<session>, wq::id<&session::timeout>) noexcept {}
};

void f(wq::workqueue& q, std::shared_ptr<session> s) {
  using namespace std::chrono_literals;
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue_delayed<&session::timeout>(s, 5ms);
#else
  (void)q.queue_delayed(s->timeout, 5ms);
#endif
}
