// expect-error: mod_delayed_work\(q, item, delay\) on a wq::shared_work.*use mod_delayed_work<&T::m>\(q, ptr, delay\)
// The untyped mod_delayed_work on a shared_delayed_work member does not compile (issue 13).
// The item holds a std::shared_ptr that only the typed form hands over, so the untyped call is
// a compile error telling the user which typed form to use (the control uses it).
#include "shared_session.hpp"

void f(wq::workqueue& q, std::shared_ptr<session> s) {
  using namespace std::chrono_literals;
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)wq::mod_delayed_work<&session::timeout>(q, s, 30s);
#else
  (void)wq::mod_delayed_work(q, s->timeout, 30s);
#endif
}
