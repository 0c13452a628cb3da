// SPDX-License-Identifier: BSL-1.0
// Exit order (issue 6, item 5d): std::exit() called from a work function. Static destruction
// then runs on that worker thread; the system queue the caller runs on cannot wait for itself,
// so it is left running (no misuse is reported, nothing hangs), other system queues are shut
// down as usual, and the process ends with the code passed to exit().
#include <wq/wq.hpp>

#include <cstdio>
#include <cstdlib>

namespace {

struct quitter {
  wq::work w;
  static void run(quitter*, wq::id<&quitter::w>) noexcept {
    std::printf("work function: calling exit(7)\n");
    std::fflush(stdout);
    std::exit(7);
  }
};

struct noop {
  wq::work w;
  static void run(noop*, wq::id<&noop::w>) noexcept {}
};

quitter q;
noop other;

}  // namespace

int main() {
  (void)wq::system_highpri_wq().enqueue<&noop::w>(&other);  // a second system queue in use
  if (!wq::system_wq().enqueue<&quitter::w>(&q)) return 2;
  (void)wq::flush_work(q.w);  // blocks: the work function ends the process first
  std::printf("main: flush_work returned (must not happen)\n");
  return 9;
}
