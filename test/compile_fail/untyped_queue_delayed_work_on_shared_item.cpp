// expect-error: queue_delayed_work / workqueue::queue_delayed on a wq::shared_work.*use q.enqueue_delayed<&T::m>\(ptr, delay\)
// C-style queue_delayed_work on a shared_delayed_work member does not compile (issue 13).
// The item holds a std::shared_ptr that only the typed form hands over, so the untyped call is
// a compile error telling the user which typed form to use (the control uses it).
#include "shared_session.hpp"

#include <wq/kernel.hpp>

void f(wq::workqueue& q, std::shared_ptr<session> s) {
  using namespace std::chrono_literals;
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)q.enqueue_delayed<&session::timeout>(s, 5ms);
#else
  (void)wq::queue_delayed_work(q, s->timeout, 5ms);
#endif
}
