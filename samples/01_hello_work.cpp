// SPDX-License-Identifier: BSL-1.0
// Sample 01: one struct with one embedded work item, queued on the system queue.
//
// The kernel's Rust bindings open with this example: an `Arc<MyStruct>` whose `Work` field is
// enqueued on `workqueue::system()`, and whose `run` receives the Arc back and prints the value.
// In wq the Arc is a std::shared_ptr, and the work member is a wq::shared_work because the queue
// keeps its std::shared_ptr reference inside the item while it is pending.
#include <wq/wq.hpp>

#include <cstdio>
#include <future>
#include <memory>

struct my_struct {
  explicit my_struct(int v) : value(v) {}

  int value;
  wq::shared_work work;  // the embedded work item; &my_struct::work is its identity
  std::promise<void> done;

  // Called on a system_wq thread with the reference the queue held while the item was pending.
  static void run(std::shared_ptr<my_struct> self, wq::id<&my_struct::work>) noexcept {
    std::printf("The value is: %d\n", self->value);
    self->done.set_value();
  }
};

// Queues the struct for execution on the system queue, where its value is printed.
std::future<void> print_later(std::shared_ptr<my_struct> val) {
  std::future<void> ran = val->done.get_future();
  auto result = wq::system_wq().enqueue<&my_struct::work>(std::move(val));
  if (!result) std::printf("not queued: %s\n", wq::to_string(result.status));
  return ran;
}

int main() {
  print_later(std::make_shared<my_struct>(42)).wait();
  return 0;
}
