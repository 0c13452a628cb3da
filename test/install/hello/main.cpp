// SPDX-License-Identifier: BSL-1.0
#include <wq/wq.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

struct connection {
  int id = 7;
  wq::shared_delayed_work idle;  // embedded: arming it allocates nothing

  static void run(std::shared_ptr<connection> self, wq::id<&connection::idle>) noexcept {
    std::printf("connection %d: idle timeout fired\n", self->id);
  }
};

int main() {
  boost::asio::io_context io;
  wq::workqueue q(io, "app");  // its items run on io's threads
  auto c = std::make_shared<connection>();
  if (!q.enqueue_delayed<&connection::idle>(c, std::chrono::milliseconds(50))) return 1;
  io.run();  // returns once the item has run: armed work is outstanding work
  std::printf("io.run() returned with nothing pending\n");
}
