// expect-error: (use of deleted function|call to (implicitly-)?deleted (copy )?constructor)
// Work items are pinned: copying one (and thus the object embedding it) does not compile.
#include <wq/work.hpp>

struct item {
  wq::work w;
};

void f(item& a) {
#ifdef WQ_COMPILE_FAIL_CONTROL
  item& b = a;
#else
  item b = a;
#endif
  (void)b;
}
