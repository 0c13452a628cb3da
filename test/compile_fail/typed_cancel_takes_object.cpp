// expect-error: take the object \(\*pointer\), not a pointer to it
// The typed cancel, disable and flush take the object whose member they name, not the owning
// pointer (which is what enqueue takes).
#include <memory>

#include <wq/cancel.hpp>

struct item {
  wq::shared_work w;
  static void run(std::shared_ptr<item>, wq::id<&item::w>) noexcept {}
};

void f(std::shared_ptr<item>& p) {
#ifdef WQ_COMPILE_FAIL_CONTROL
  (void)wq::disable_work<&item::w>(*p);
#else
  (void)wq::disable_work<&item::w>(p);
#endif
}
