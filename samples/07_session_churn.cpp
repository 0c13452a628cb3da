// SPDX-License-Identifier: BSL-1.0
// Sample 07: sessions that own their work, churned by the hundred thousand.
//
// Each session is an object owned by std::shared_ptr with
//   - an embedded flush item (`wq::shared_work`): every request queues it, requests that find
//     it already pending coalesce into the pending run (rule 1);
//   - an embedded idle timeout (`wq::shared_delayed_work`): every request moves its deadline
//     with mod_delayed_work (rule 20); when it fires, the session closes;
//   - its own ordered queue on its own strand (`wq::ordered_workqueue{strand}`): audit records,
//     posted to the queue's executor, run one at a time in request order (rule 39) and
//     serialised with the session's other handlers on that strand, so its state needs no lock.
// Nothing tears a session down explicitly: it goes where its last reference drops, which is
// usually inside its last audit record, i.e. on its own strand, inside an item of the very
// queue it owns. Destroying that idle queue there is not a misuse (the kernel would call it
// one; wq destroys a queue with nothing else in flight at once), so the sample runs with no
// report even in a Debug build of wq, whose diagnostic handler aborts on misuse.
//
// Everything runs on one io_context, run by two threads, with no work guard: the shared queue
// and the per-session queues hold outstanding work on it while they have items queued, running
// or armed, so io.run() returns exactly when the last session is gone.
//
// Usage: 07_session_churn [--sessions N] [--live N]   (defaults: 100000 sessions, 512 alive)
// Prints one summary line and "OK: ..." (exit 0), or what went wrong (exit 1).
#include <wq/wq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using strand_type = asio::strand<asio::io_context::executor_type>;

namespace {

// Every report wq makes (misuse or notice) is counted; the sample expects none.
std::atomic<std::uint64_t> g_reports{0};
void count_report(const wq::diagnostic& d) noexcept {
  g_reports.fetch_add(1, std::memory_order_relaxed);
  wq::print_diagnostic(d);
}

// Relaxed counters: they are read after io.run() returned, which orders every write.
struct counters {
  std::atomic<std::uint64_t> constructed{0}, destroyed{0}, requests{0}, audited{0}, out_of_order{0},
      flush_runs{0}, flushed{0}, timeouts{0}, closes{0};
};
void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

class session;

// Creates sessions, at most `live` at a time, until `total` have been created.
class churn {
 public:
  churn(asio::io_context& io, std::uint64_t total, std::uint64_t live)
      : io_(io),
        events_(io, "events"),
        total_(total),
        live_(live),
        strand_(asio::make_strand(io)) {}

  void start();
  /// A session is gone (called from its destructor, on any thread).
  void gone();

  asio::io_context& io() { return io_; }
  wq::workqueue& events() { return events_; }  // flush runs and timeouts
  counters& c() { return c_; }

 private:
  void spawn();  // on strand_

  asio::io_context& io_;
  counters c_;
  wq::workqueue events_;
  std::uint64_t total_;
  std::uint64_t live_;
  std::uint64_t created_ = 0;  // touched only on strand_
  strand_type strand_;
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(churn& owner, std::uint64_t id)
      : owner_(owner),
        strand_(asio::make_strand(owner.io())),
        audit_(strand_, "session-audit"),
        // A quarter of the sessions send nothing and close when their idle timeout fires.
        requests_planned_(id % 4 == 0 ? 0 : 1 + id % 8) {
    add(owner_.c().constructed);
  }
  ~session() {
    add(owner_.c().destroyed);
    owner_.gone();
  }  // audit_ goes here: idle (at most the item running this destructor is in flight)
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Starts the session: its requests arrive one by one on its strand.
  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      (void)self->owner_.events().enqueue_delayed<&session::idle_timeout>(self, idle_after);
      if (self->requests_planned_ > 0) self->next_request();
    });
  }

  wq::shared_work flush;                 // queued by every request; coalesces
  wq::shared_delayed_work idle_timeout;  // pushed back by every request

  static void run(std::shared_ptr<session> self, wq::id<&session::flush>) noexcept {
    add(self->owner_.c().flush_runs);
    add(self->owner_.c().flushed, self->unflushed_.exchange(0));
  }
  static void run(std::shared_ptr<session> self, wq::id<&session::idle_timeout>) noexcept {
    add(self->owner_.c().timeouts);
    asio::post(self->strand_, [self] { self->close(); });
  }

 private:
  static constexpr auto idle_after = 2ms;

  // On the strand.
  void next_request() {
    const std::uint64_t n = requests_++;
    add(owner_.c().requests);
    unflushed_.fetch_add(1);
    (void)owner_.events().enqueue<&session::flush>(shared_from_this());  // coalesces
    (void)wq::mod_delayed_work<&session::idle_timeout>(owner_.events(), shared_from_this(),
                                                       idle_after);
    // The audit record runs on this strand, after this handler, in request order.
    asio::post(audit_.get_executor(), [self = shared_from_this(), n] {
      if (n != self->audited_) add(self->owner_.c().out_of_order);
      self->audited_ = n + 1;
      add(self->owner_.c().audited);
    });
    if (requests_ < requests_planned_) {
      asio::post(strand_, [self = shared_from_this()] { self->next_request(); });
    } else {
      close();
    }
  }

  // On the strand. The queue's reference of a still-armed timeout is handed back (and
  // dropped here); what is still queued keeps the session until it has run.
  void close() {
    if (closed_) return;
    closed_ = true;
    add(owner_.c().closes);
    (void)wq::cancel_work<&session::idle_timeout, std::shared_ptr<session>>(*this);
  }

  churn& owner_;
  strand_type strand_;
  wq::ordered_workqueue audit_;  // on strand_
  std::uint64_t requests_planned_;
  std::uint64_t requests_ = 0;  // on the strand only
  std::uint64_t audited_ = 0;   // on the strand only (audit records run on it)
  bool closed_ = false;         // on the strand only
  std::atomic<std::uint64_t> unflushed_{0};
};

void churn::start() {
  asio::post(strand_, [this] {
    for (std::uint64_t i = 0; i < live_ && created_ < total_; ++i) spawn();
  });
}

void churn::spawn() {
  const std::uint64_t id = created_++;
  std::make_shared<session>(*this, id)->start();
}

void churn::gone() {
  asio::post(strand_, [this] {
    if (created_ < total_) spawn();
  });
}

bool parse(int argc, char** argv, std::uint64_t& sessions, std::uint64_t& live) {
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--sessions") == 0 && has_value) {
      sessions = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--live") == 0 && has_value) {
      live = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--sessions N] [--live N]\n", argv[0]);
      return false;
    }
  }
  return sessions > 0 && live > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t sessions = 100'000;
  std::uint64_t live = 512;
  if (!parse(argc, argv, sessions, live)) return 2;
  (void)wq::set_diagnostic_handler(&count_report);

  asio::io_context io{2};
  std::optional<churn> driver;
  driver.emplace(io, sessions, live);
  const auto start = std::chrono::steady_clock::now();
  driver->start();
  std::thread second([&io] { io.run(); });  // no work guard: run() returns when all is done
  io.run();
  second.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  counters& c = driver->c();
  const wq::queue_stats events = driver->events().stats();
  std::printf(
      "%llu sessions in %.2f s: %llu requests, %llu audited in order (%llu out of order), "
      "%llu flush runs for %llu requests (%llu coalesced), %llu idle timeouts, %llu closes\n",
      static_cast<unsigned long long>(c.constructed.load()), secs,
      static_cast<unsigned long long>(c.requests.load()),
      static_cast<unsigned long long>(c.audited.load()),
      static_cast<unsigned long long>(c.out_of_order.load()),
      static_cast<unsigned long long>(c.flush_runs.load()),
      static_cast<unsigned long long>(c.flushed.load()),
      static_cast<unsigned long long>(events.coalesced),
      static_cast<unsigned long long>(c.timeouts.load()),
      static_cast<unsigned long long>(c.closes.load()));
  bool ok = true;
  auto expect = [&ok](bool cond, const char* what) {
    if (!cond) {
      std::printf("FAILED: %s\n", what);
      ok = false;
    }
  };
  expect(c.constructed.load() == sessions, "every session was created");
  expect(c.destroyed.load() == c.constructed.load(), "every session was destroyed");
  expect(c.audited.load() == c.requests.load(), "every request was audited");
  expect(c.out_of_order.load() == 0, "audit records ran in request order");
  expect(c.flushed.load() == c.requests.load(), "every request was flushed");
  expect(c.closes.load() == sessions, "every session closed once");
  expect(events.in_flight == 0 && events.armed == 0, "nothing is left on the shared queue");
  expect(g_reports.load() == 0, "wq reported nothing (no misuse, no notice)");
  driver.reset();
  if (!ok) return 1;
  std::printf("OK: %llu sessions constructed and destroyed, 0 wq reports\n",
              static_cast<unsigned long long>(sessions));
  return 0;
}
