// SPDX-License-Identifier: BSL-1.0
// Test support: io_contexts run by threads of the test's own (io_runner) or by the test thread
// itself (run_ready).
#pragma once

#include <cstddef>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace wq_test {

/// Runs the handlers `io` has ready without blocking, even if an earlier run/poll stopped it
/// by running out of work. Returns the number of handlers run.
inline std::size_t run_ready(boost::asio::io_context& io) {
  io.restart();
  return io.poll();
}

/// An io_context run by `threads` dedicated threads until stop() or destruction (declare the
/// queues that use it after it, so they are destroyed first). id() is the first thread's id, so
/// tests can tell which executor ran an item.
class io_runner {
 public:
  explicit io_runner(unsigned threads = 1)
      : io_(threads == 1 ? 1 : BOOST_ASIO_CONCURRENCY_HINT_DEFAULT) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  io_runner(const io_runner&) = delete;
  io_runner& operator=(const io_runner&) = delete;
  ~io_runner() { stop(); }

  boost::asio::io_context& context() noexcept { return io_; }
  [[nodiscard]] std::thread::id id() const noexcept { return threads_.front().get_id(); }

  /// Lets the threads finish the handlers they have and joins them. Idempotent.
  void stop() {
    guard_.reset();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
};

}  // namespace wq_test
