// SPDX-License-Identifier: BSL-1.0
// Sample 02: two work members in one object, told apart by their member pointers.
//
// The Rust bindings need `Work<MyStruct, 1>` and `Work<MyStruct, 2>` to tell two fields apart.
// In wq the member pointer is the identity: `run` is overloaded on wq::id<&my_struct::work_1>
// and wq::id<&my_struct::work_2>, and enqueue<&my_struct::work_N> picks the field.
#include <wq/wq.hpp>

#include <cstdio>
#include <latch>
#include <memory>

struct my_struct {
  my_struct(int v, std::latch& l) : value(v), done(l) {}

  int value;
  wq::shared_work work_1;
  wq::shared_work work_2;
  std::latch& done;

  static void run(std::shared_ptr<my_struct> self, wq::id<&my_struct::work_1>) noexcept {
    std::printf("The value is: %d\n", self->value);
    self->done.count_down();
  }
  static void run(std::shared_ptr<my_struct> self, wq::id<&my_struct::work_2>) noexcept {
    std::printf("The second value is: %d\n", self->value);
    self->done.count_down();
  }
};

int main() {
  std::latch done(2);
  auto val = std::make_shared<my_struct>(42, done);
  // Each member is pending independently; each holds its own reference while pending.
  auto first = wq::system_wq().enqueue<&my_struct::work_1>(val);
  auto second = wq::system_wq().enqueue<&my_struct::work_2>(val);
  if (!first || !second) return 1;
  done.wait();
  return 0;
}
