// SPDX-License-Identifier: BSL-1.0
// Sample 05: testing timeouts without sleeping: a Catch2 test file that drives wq::test_clock.
//
// The code under test is a session that closes itself after 30 s without traffic (every
// message pushes the timeout back with mod_delayed_work) and sends a keepalive every 10 s while
// it is open (a delayed item that re-arms itself). The tests install a wq::test_clock, so the
// delayed items wait for virtual time, then step that time with advance() and run the queue to
// idle with flush(): a minute of session life takes microseconds and no test can be flaky.
// Build it like any Catch2 test file, linked with a Catch2 main (one file of the test program
// that defines CATCH_CONFIG_MAIN); wq registers it with CTest as "sample: 05_testing_delayed_work".
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>

#include <boost/asio/io_context.hpp>

#include <wq/wq.hpp>

using namespace std::chrono_literals;

// ---- the code under test ---------------------------------------------------------------------

class session {
 public:
  static constexpr auto idle_timeout = 30s;
  static constexpr auto keepalive_period = 10s;

  explicit session(wq::workqueue& q) : queue_(q) {
    (void)queue_.enqueue_delayed<&session::idle>(this, idle_timeout);
    (void)queue_.enqueue_delayed<&session::keepalive>(this, keepalive_period);
  }
  // Nothing of this session runs once the destructor returns (rule 32).
  ~session() {
    (void)wq::cancel_delayed_work_sync(idle);
    (void)wq::cancel_delayed_work_sync(keepalive);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Traffic: the idle timeout starts again from now, whatever state it is in.
  void on_message() { (void)wq::mod_delayed_work<&session::idle>(queue_, this, idle_timeout); }

  [[nodiscard]] bool closed() const { return closed_.load(); }
  [[nodiscard]] int keepalives_sent() const { return keepalives_.load(); }

  wq::delayed_work idle;       // fires after idle_timeout without traffic
  wq::delayed_work keepalive;  // fires every keepalive_period while open

  static void run(session* self, wq::id<&session::idle>) noexcept { self->closed_.store(true); }
  static void run(session* self, wq::id<&session::keepalive>) noexcept {
    if (self->closed_.load()) return;
    self->keepalives_.fetch_add(1);
    (void)self->queue_.enqueue_delayed<&session::keepalive>(self, keepalive_period);
  }

 private:
  wq::workqueue& queue_;
  std::atomic<bool> closed_{false};
  std::atomic<int> keepalives_{0};
};

// ---- the tests -------------------------------------------------------------------------------

TEST_CASE("session: closes after 30 s without traffic, not a moment before", "[session]") {
  wq::test_clock clock;  // first: the items below are armed against virtual time
  wq::workqueue q{"sessions"};
  session s{q};

  clock.advance(30s - 1ms);
  q.flush();  // runs whatever the advance queued, on the queue's own threads
  CHECK_FALSE(s.closed());

  clock.advance(1ms);
  q.flush();
  CHECK(s.closed());
}

TEST_CASE("session: every message pushes the idle timeout back", "[session]") {
  wq::test_clock clock;
  wq::workqueue q{"sessions"};
  session s{q};

  clock.advance(20s);
  s.on_message();  // due 30 s from now, not 10 s from now
  clock.advance(20s);
  q.flush();
  CHECK_FALSE(s.closed());

  clock.advance(10s);
  q.flush();
  CHECK(s.closed());
}

TEST_CASE("session: sends a keepalive every 10 s until it closes", "[session]") {
  wq::test_clock clock;
  wq::workqueue q{"sessions"};
  session s{q};

  // Periodic work: step through each deadline and run the queue to idle after each step, so
  // the keepalive re-armed by one run is due within the same call.
  clock.advance(25s, [&] { q.flush(); });
  CHECK(s.keepalives_sent() == 2);  // at 10 s and 20 s
  s.on_message();                   // idle from 25 s: closes at 55 s

  clock.advance(1min, [&] { q.flush(); });
  CHECK(s.closed());
  CHECK(s.keepalives_sent() == 5);  // at 30, 40 and 50 s; the one due at 60 s found it closed
}

TEST_CASE("session: on an io_context the test polls, everything runs on the test thread",
          "[session]") {
  wq::test_clock clock;
  boost::asio::io_context io;
  wq::workqueue q{io, "sessions"};  // its items run only inside io.poll() below
  session s{q};
  auto run_to_idle = [&] {
    io.restart();  // poll() stops the context when it runs out of handlers
    io.poll();
  };

  clock.advance(29s, run_to_idle);
  CHECK(s.keepalives_sent() == 2);
  CHECK_FALSE(s.closed());
  clock.advance(1s, run_to_idle);
  CHECK(s.closed());
}
