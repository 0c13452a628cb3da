// expect-error: virtual \(or ambiguous, or inaccessible\) base of Outer
// A work member inherited through a virtual base cannot be recovered by container_of: the
// offset is only known at run time (issue 2, member-pointer traits).
#include <wq/container_of.hpp>

struct vbase {
  int m = 0;
};
#ifdef WQ_COMPILE_FAIL_CONTROL
struct vderived : vbase {
#else
struct vderived : virtual vbase {
#endif
  int own = 0;
};

vderived* recover(int* field) { return wq::container_of_as<vderived, &vbase::m>(field); }
