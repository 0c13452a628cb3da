// SPDX-License-Identifier: BSL-1.0
// wq_demo: the Quick start's first command. Simulated sessions embed wq work items:
//
//   - `flush`: a coalescing work item. Every "request" asks for a flush; while one is pending
//     further requests coalesce into it (queue_work returns false), so one run serves many.
//   - `timeout`: a delayed item armed when the session opens; it closes the session.
//   - `log`: every session's flush appends to an ordered queue, so log lines stay in order.
//
// Sessions are std::shared_ptr-owned; each pending item holds a reference, so a session is
// released exactly when its last item has run. The summary checks that nothing was lost: every
// request was flushed, every session closed and released.
#include <wq/wq.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace wq::literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct counters {
  std::atomic<long> requests{0};
  std::atomic<long> flush_queued{0};
  std::atomic<long> flush_coalesced{0};
  std::atomic<long> flush_runs{0};
  std::atomic<long> flushed_requests{0};
  std::atomic<long> log_lines{0};
  std::atomic<long> log_out_of_order{0};
  std::atomic<long> sessions_closed{0};
  std::atomic<long> sessions_alive{0};
};

struct log_record;

struct app {
  counters stats;
  wq::workqueue io{"demo_io"};
  wq::ordered_workqueue log{"demo_log"};
  long log_seq = 0;      // guarded by session::log_mu()
  long last_logged = -1;  // touched only on the ordered log queue
  std::latch* all_closed = nullptr;
};

struct log_record {
  log_record(app& a, long s) : owner(a), seq(s) {}
  app& owner;
  long seq;
  wq::work item;
  static void run(std::unique_ptr<log_record> self, wq::id<&log_record::item>) noexcept {
    app& a = self->owner;
    if (self->seq != a.last_logged + 1) a.stats.log_out_of_order.fetch_add(1);
    a.last_logged = self->seq;
    a.stats.log_lines.fetch_add(1);
  }
};

class session {
 public:
  explicit session(app& a) : app_(a) { a.stats.sessions_alive.fetch_add(1); }
  ~session() { app_.stats.sessions_alive.fetch_sub(1); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // A request: record it and ask for a flush (coalesced while one is pending).
  static void request(const std::shared_ptr<session>& s) {
    s->unflushed_.fetch_add(1, std::memory_order_relaxed);
    s->app_.stats.requests.fetch_add(1, std::memory_order_relaxed);
    auto r = s->app_.io.enqueue<&session::flush>(s);
    if (r) {
      s->app_.stats.flush_queued.fetch_add(1, std::memory_order_relaxed);
    } else {
      s->app_.stats.flush_coalesced.fetch_add(1, std::memory_order_relaxed);
    }
  }

  static void open(const std::shared_ptr<session>& s, wq::jiffies idle) {
    (void)s->app_.io.enqueue_delayed<&session::timeout>(s, idle);
  }

  wq::shared_work flush;
  wq::shared_delayed_work timeout;

  static void run(std::shared_ptr<session> self, wq::id<&session::flush>) noexcept {
    // Rule 7: every request made before a coalesced queue attempt is visible here.
    const long n = self->unflushed_.exchange(0, std::memory_order_relaxed);
    app& a = self->app_;
    a.stats.flush_runs.fetch_add(1);
    a.stats.flushed_requests.fetch_add(n);
    // Numbering and queueing happen together, so queueing order is numbering order; the
    // ordered queue must then run the records in exactly that order (rule 39).
    std::lock_guard lk(log_mu());
    (void)a.log.enqueue<&log_record::item>(std::make_unique<log_record>(a, a.log_seq++));
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::timeout>) noexcept {
    self->closed_.store(true);
    self->app_.stats.sessions_closed.fetch_add(1);
    self->app_.all_closed->count_down();
  }

  [[nodiscard]] bool closed() const { return closed_.load(); }

 private:
  static std::mutex& log_mu() {
    static std::mutex m;
    return m;
  }
  app& app_;
  std::atomic<long> unflushed_{0};
  std::atomic<bool> closed_{false};
};

int usage(const char* argv0, const char* error) {
  if (error) std::fprintf(stderr, "%s: %s\n", argv0, error);
  std::fprintf(error ? stderr : stdout,
               "usage: %s [--sessions N] [--requests N] [--help]\n"
               "  --sessions N   simulated sessions (default 2000)\n"
               "  --requests N   requests per session (default 200)\n",
               argv0);
  return error ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  long sessions = 2000;
  long requests = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0], nullptr);
    if ((arg == "--sessions" || arg == "--requests") && i + 1 < argc) {
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0' || v < 1 || v > 1'000'000)
        return usage(argv[0], "expected a number between 1 and 1000000");
      (arg == "--sessions" ? sessions : requests) = v;
      continue;
    }
    return usage(argv[0], ("unknown or incomplete option: " + arg).c_str());
  }

  std::printf("wq demo: %ld sessions x %ld requests; work item %zu B, delayed item %zu B\n",
              sessions, requests, sizeof(wq::work), sizeof(wq::delayed_work));
  const auto t0 = clock_type::now();
  {
    app a;
    std::latch closed(sessions);
    a.all_closed = &closed;
    std::vector<std::shared_ptr<session>> all;
    all.reserve(static_cast<std::size_t>(sessions));
    for (long i = 0; i < sessions; ++i) {
      all.push_back(std::make_shared<session>(a));
      session::open(all.back(), wq::msecs_to_jiffies(static_cast<unsigned>(300 + i % 200)));
    }
    // Two client threads fire requests at all sessions.
    std::vector<std::thread> clients;
    for (int c = 0; c < 2; ++c) {
      clients.emplace_back([&, c] {
        for (long r = 0; r < requests; ++r)
          for (long i = c; i < sessions; i += 2) session::request(all[static_cast<std::size_t>(i)]);
      });
    }
    for (auto& t : clients) t.join();
    // A final flush for every session, after the last request.
    a.io.drain();
    all.clear();  // the queue's references keep armed sessions alive until their timeout
    closed.wait();
    a.io.drain();
    a.log.drain();

    const auto& s = a.stats;
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    std::printf("requests          %10ld\n", s.requests.load());
    std::printf("flush queued      %10ld   (one run each)\n", s.flush_queued.load());
    std::printf("flush coalesced   %10ld   (queue_work found it pending, rule 1)\n",
                s.flush_coalesced.load());
    std::printf("flush runs        %10ld\n", s.flush_runs.load());
    std::printf("requests flushed  %10ld\n", s.flushed_requests.load());
    std::printf("log lines         %10ld   out of order: %ld\n", s.log_lines.load(),
                s.log_out_of_order.load());
    std::printf("sessions closed   %10ld   by their idle timeout\n", s.sessions_closed.load());
    std::printf("elapsed           %10.2f s\n", secs);
    const bool ok = s.requests == sessions * requests && s.flushed_requests == s.requests &&
                    s.flush_runs == s.flush_queued && s.log_lines == s.flush_runs &&
                    s.log_out_of_order == 0 && s.sessions_closed == sessions;
    a.io.destroy();
    a.log.destroy();
    const bool released = s.sessions_alive.load() == 0;
    std::printf("sessions released %10s\n", released ? "all" : "NOT ALL");
    if (!ok || !released) {
      std::printf("FAILED: something was lost\n");
      return 1;
    }
    std::printf("OK: every request flushed, every session closed and released\n");
  }
  return 0;
}
