// SPDX-License-Identifier: BSL-1.0
// Misuse (issue 3, §5.10): destroying a work item that is still pending. The kernel's
// debugobjects would report it; wq's WQ_ASSERT (on in debug builds, forced on here) reports
// "destroyed while pending" and aborts instead of letting a worker touch freed memory.
// Run by ctest, which expects this program to abort with that message.
#define WQ_ENABLE_ASSERTS 1
#include <wq/workqueue.hpp>

#include <cstdio>

#include <boost/asio/io_context.hpp>

struct item {
  wq::work w;
  static void run(item*, wq::id<&item::w>) noexcept {}
};

int main() {
  boost::asio::io_context io;  // never run: the item stays queued
  wq::workqueue q{io.get_executor(), "misuse"};
  auto* p = new item;
  if (!q.enqueue<&item::w>(p)) return 0;
  std::fprintf(stderr, "destroying a pending item\n");
  delete p;  // misuse: must abort here
  return 0;  // reaching this means the misuse went unreported
}
