// SPDX-License-Identifier: BSL-1.0
// Sample 03: a delayed work member, queued after 42 jiffies and, with a plain enqueue, at once.
//
// `enqueue_delayed<&T::member>(pointer, delay)` arms the item's own timer; a plain `enqueue` of
// the same member is a delay of zero. The item is pending from the call until it starts running,
// so the second call below only succeeds because the first one has run by then.
#include <wq/wq.hpp>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>

using namespace wq::literals;

struct my_struct {
  explicit my_struct(int v) : value(v) {}

  int value;
  wq::shared_delayed_work work;
  std::promise<std::chrono::steady_clock::time_point> ran;

  static void run(std::shared_ptr<my_struct> self, wq::id<&my_struct::work>) noexcept {
    std::printf("The value is: %d\n", self->value);
    self->ran.set_value(std::chrono::steady_clock::now());
  }
};

// Prints the value after 42 jiffies (42 ms at the default HZ of 1000).
bool print_later(std::shared_ptr<my_struct> val) {
  return static_cast<bool>(
      wq::system_wq().enqueue_delayed<&my_struct::work>(std::move(val), 42_jiffies));
}

// A plain enqueue of a delayed member: the same as a delay of zero.
bool print_now(std::shared_ptr<my_struct> val) {
  return static_cast<bool>(wq::system_wq().enqueue<&my_struct::work>(std::move(val)));
}

int main() {
  auto later = std::make_shared<my_struct>(42);
  auto ran_later = later->ran.get_future();
  const auto armed_at = std::chrono::steady_clock::now();
  if (!print_later(later)) return 1;
  const auto waited = ran_later.get() - armed_at;
  std::printf("delayed item ran after %s 42 jiffies\n",
              waited >= (42_jiffies).to_duration() ? "at least" : "LESS THAN");

  auto now = std::make_shared<my_struct>(7);
  auto ran_now = now->ran.get_future();
  if (!print_now(now)) return 1;
  ran_now.wait();
  return 0;
}
