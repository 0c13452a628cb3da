// SPDX-License-Identifier: BSL-1.0
// Sample 04: a generic outer type.
//
// The Rust bindings show `impl_has_delayed_work!` on `MyStruct<'a, T, const N: usize>` with a
// work ID of 17. In C++ the generic struct is a class template; the lifetime becomes a
// std::span over data the caller keeps alive, and the member pointer &my_struct<T, N>::work_field
// names the work item in every instantiation, no ID needed.
#include <wq/wq.hpp>

#include <cstddef>
#include <cstdio>
#include <latch>
#include <span>

using namespace wq::literals;

template <class T, std::size_t N>
struct my_struct {
  my_struct(std::span<const T, N> d, void (*fn)(std::span<const T, N>), std::latch& l)
      : data(d), f(fn), done(l) {}

  wq::delayed_work work_field;
  std::span<const T, N> data;
  void (*f)(std::span<const T, N>);
  std::latch& done;

  // A raw pointer: the caller keeps the object alive until it has run (here: main waits).
  static void run(my_struct* self, wq::id<&my_struct::work_field>) noexcept {
    self->f(self->data);
    self->done.count_down();
  }
};

void print_ints(std::span<const int, 3> v) { std::printf("ints: %d %d %d\n", v[0], v[1], v[2]); }
void print_doubles(std::span<const double, 2> v) {
  std::printf("doubles: %.1f %.1f\n", v[0], v[1]);
}

int main() {
  static constexpr int ints[3] = {1, 2, 3};
  static constexpr double doubles[2] = {0.5, 1.5};
  std::latch done(2);
  my_struct<int, 3> a(std::span<const int, 3>(ints), &print_ints, done);
  my_struct<double, 2> b(std::span<const double, 2>(doubles), &print_doubles, done);
  auto& q = wq::system_wq();
  if (!q.enqueue_delayed<&my_struct<int, 3>::work_field>(&a, 12_jiffies)) return 1;
  if (!q.enqueue<&my_struct<double, 2>::work_field>(&b)) return 1;
  done.wait();
  return 0;
}
