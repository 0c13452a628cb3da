// SPDX-License-Identifier: BSL-1.0
// wq_server: the Quick start's first command. A TCP server on 127.0.0.1 whose sessions embed wq
// work items, driven for a few seconds by a built-in load generator over loopback.
//
// Each session (std::shared_ptr-owned) embeds:
//   - `timeout`: the idle timeout, a delayed item re-armed by the typed mod_delayed_work on every
//     request (rule 20). When it fires, the session's socket is closed on the session's strand.
//   - `flush`: a coalescing item. Every request marks the session dirty and queues it; while it is
//     pending, further attempts return already_pending (rule 1), so one run persists many.
//   - an ordered_workqueue built on the socket's strand: audit records run one at a time in
//     request order (rule 39), serialised with the socket's handlers, so they need no lock.
//   - `close_req` and `retire`: the hand-offs between the strand and the shared queues.
// A self-requeueing delayed item prints a live per-queue table once a second (the kernel's
// wq_monitor.py).
//
// Protocol: the client sends "REQ <n>\n" lines; the server answers "ACK <n>\n" from the strand.
// About one connection in ten stops sending early, so its idle timeout fires during the run.
// Shutdown stops the client, cancels every timeout (cancel_delayed_work_sync), closes every
// session and drains the queues; the summary checks that nothing was lost (exit 1 otherwise).
#include <wq/stats.hpp>
#include <wq/wq.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

#include <sys/resource.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using strand_type = asio::strand<asio::io_context::executor_type>;
using socket_type = tcp::socket::rebind_executor<strand_type>::other;

constexpr std::size_t max_line_buffer = 64 * 1024;  // a client line longer than this is an error
constexpr unsigned worker_threads = 2;              // the shared queues' pool: a 2-core machine
constexpr int max_batch = 16;                       // requests the client writes at once
constexpr std::uint64_t idle_after_batches = 4;     // batches an idle connection sends first

// Relaxed tallies: each is read for the summary only after the threads that wrote it were
// joined or the queues that ran them were drained (both order the writes), or by the monitor,
// for which a value a moment old is fine.
struct server_counters {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> replied{0};
  std::atomic<std::uint64_t> replies_lost{0};
  std::atomic<std::uint64_t> discarded{0};  // lines read after the session began closing
  std::atomic<std::uint64_t> bad_lines{0};
  std::atomic<std::uint64_t> audited{0};
  std::atomic<std::uint64_t> audit_out_of_order{0};
  std::atomic<std::uint64_t> audit_refused{0};
  std::atomic<std::uint64_t> flush_queued{0};
  std::atomic<std::uint64_t> flush_coalesced{0};
  std::atomic<std::uint64_t> flush_refused{0};
  std::atomic<std::uint64_t> flush_runs{0};
  std::atomic<std::uint64_t> flush_empty{0};
  std::atomic<std::uint64_t> flushed{0};
  std::atomic<std::uint64_t> timeout_refused{0};
  std::atomic<std::uint64_t> timeouts_fired{0};
  std::atomic<std::uint64_t> timeouts_stale{0};
  std::atomic<std::uint64_t> close_req_runs{0};
  std::atomic<std::uint64_t> timeouts_cancelled{0};
  std::atomic<std::uint64_t> closed_idle{0};
  std::atomic<std::uint64_t> closed_peer{0};
  std::atomic<std::uint64_t> closed_shutdown{0};
  std::atomic<std::uint64_t> closed_error{0};
  std::atomic<std::uint64_t> retire_refused{0};
  std::atomic<std::uint64_t> queue_teardown_errors{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> sessions_constructed{0};
  std::atomic<std::uint64_t> sessions_destroyed{0};
};

std::atomic<std::uint64_t> g_misuse{0};
std::atomic<std::uint64_t> g_notices{0};

void count_diagnostic(const wq::diagnostic& d) noexcept {
  (d.misuse() ? g_misuse : g_notices).fetch_add(1, std::memory_order_relaxed);
  wq::print_diagnostic(d);
}

void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}
std::uint64_t get(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

// Adds `s` to `into`: how the per-session ordered queues become one row of the table.
void merge(wq::queue_stats& into, const wq::queue_stats& s) {
  into.queued += s.queued;
  into.coalesced += s.coalesced;
  into.started += s.started;
  into.finished += s.finished;
  into.cancelled += s.cancelled;
  into.in_flight += s.in_flight;
  into.running += s.running;
  into.armed += s.armed;
  into.max_depth = std::max(into.max_depth, s.max_depth);
  for (std::size_t i = 0; i < into.queue_latency.counts.size(); ++i) {
    into.queue_latency.counts[i] += s.queue_latency.counts[i];
    into.run_time.counts[i] += s.run_time.counts[i];
  }
}

class session;

// The server: the shared queues, the acceptor and the registry of live sessions.
class server {
  asio::io_context& io_;
  const std::chrono::milliseconds idle_;

 public:
  server(asio::io_context& io, asio::thread_pool& workers, std::chrono::milliseconds idle)
      : io_(io),
        idle_(idle),
        flush_q(workers, "srv_flush"),
        timeout_q(workers, "srv_timeout"),
        events_q(workers, "srv_events"),
        acceptor_strand_(asio::make_strand(io)),
        acceptor_(acceptor_strand_) {}

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Listens on 127.0.0.1, on a port the system chooses. Throws: boost::system::system_error.
  tcp::endpoint listen() {
    const tcp::endpoint ep(asio::ip::make_address_v4("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    return acceptor_.local_endpoint();
  }

  void start_accepting() {
    asio::post(acceptor_strand_, [this] { accept(); });
  }
  /// Closes the acceptor and waits until no session can be added any more.
  void stop_accepting() {
    std::promise<void> done;
    asio::post(acceptor_strand_, [this, &done] {
      error_code ignored;
      acceptor_.close(ignored);
      done.set_value();
    });
    done.get_future().wait();
  }

  std::vector<std::shared_ptr<session>> live_sessions() {
    std::lock_guard lk(mu_);
    return {live_.begin(), live_.end()};
  }
  /// Waits until every accepted session has retired. Preconditions: stop_accepting() returned.
  void wait_all_retired() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return retired_ == accepted_; });
  }
  /// The per-session ordered queues as one row; `count` receives how many there were.
  wq::queue_stats session_queue_stats(std::uint64_t& count);
  /// Called once per session, when its ordered queue has been destroyed (or could not be).
  void retired(const std::shared_ptr<session>& s, const wq::queue_stats& final_stats);

  [[nodiscard]] std::uint64_t accepted() {
    std::lock_guard lk(mu_);
    return accepted_;
  }
  [[nodiscard]] std::uint64_t open_sessions() {
    std::lock_guard lk(mu_);
    return live_.size();
  }
  [[nodiscard]] std::chrono::milliseconds idle() const { return idle_; }

  server_counters c;
  // Declared after `c`, so destroyed (drained) before it: their items update it.
  wq::workqueue flush_q;    // session::flush
  wq::workqueue timeout_q;  // session::timeout
  wq::workqueue events_q;   // session::retire and the monitor

 private:
  void accept();

  strand_type acceptor_strand_;
  tcp::acceptor acceptor_;  // touched only on acceptor_strand_ (after listen())

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<std::shared_ptr<session>> live_;  // guarded by mu_
  wq::queue_stats retired_q_;                          // guarded by mu_
  std::uint64_t accepted_ = 0;                         // guarded by mu_
  std::uint64_t retired_ = 0;                          // guarded by mu_
};

// One accepted connection. Its socket handlers, its audit records and its close all run on the
// socket's strand; flush, timeout and retire run on the server's shared queues.
class session : public std::enable_shared_from_this<session> {
 public:
  session(server& srv, socket_type socket)
      : srv_(srv), socket_(std::move(socket)), log_q_(socket_.get_executor(), "session") {
    add(srv_.c.sessions_constructed);
  }
  ~session() { add(srv_.c.sessions_destroyed); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// The idle timeout: fires `idle` after the last request, on srv_timeout.
  wq::shared_delayed_work timeout;
  /// Persists the requests marked dirty since its last run, on srv_flush.
  wq::shared_work flush;
  /// Carries a fired timeout onto the strand (queued on the session's ordered queue).
  wq::shared_work close_req;
  /// Tears the session down off the strand, on srv_events, once its socket is closed.
  wq::shared_work retire;

  /// The strand of the session's socket, its handlers and its ordered queue.
  [[nodiscard]] strand_type strand() { return socket_.get_executor(); }

  /// Starts the session. Runs on the strand.
  void start() {
    if (closed_) return;
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    rearm_timeout();
    read();
  }

  /// The shutdown path, from any thread but the strand: stops the timeout, then closes on the
  /// strand.
  void shut_down() {
    if (wq::cancel_delayed_work_sync(timeout)) add(srv_.c.timeouts_cancelled);
    asio::post(socket_.get_executor(),
               [self = shared_from_this()] { self->close(close_reason::shutdown); });
  }

  /// Adds this session's ordered-queue statistics to `into`. Any thread.
  void add_queue_stats(wq::queue_stats& into) {
    std::lock_guard lk(q_mu_);
    merge(into, q_destroyed_ ? q_final_ : log_q_.stats());
  }

  /// An audit record, run by the ordered queue on the strand, in request order.
  void audit(std::uint64_t index, std::uint64_t n) {
    // Rule 39: records run in the order they were queued, which is the order received. The
    // client numbers its requests 1, 2, 3... on each connection, so n must equal the index.
    if (index != audited_ + 1 || n != index) add(srv_.c.audit_out_of_order);
    audited_ = index;
    add(srv_.c.audited);
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::flush>) noexcept {
    // Rules 6, 7: every increment made before a queueing attempt that returned queued or
    // already_pending is visible here. One this exchange misses was followed by an attempt
    // that found PENDING clear (rule 2) and queued the next run, which takes it.
    const std::uint64_t n = self->dirty_.exchange(0, std::memory_order_relaxed);
    add(self->srv_.c.flush_runs);
    if (n == 0) add(self->srv_.c.flush_empty);  // an earlier run took this run's requests
    add(self->srv_.c.flushed, n);
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::timeout>) noexcept {
    add(self->srv_.c.timeouts_fired);
    // The socket belongs to the strand: hand the close to the ordered queue, which runs on it.
    // already_pending: a close is on its way; the retire path cancels this item before it
    // destroys the queue, so the queue is alive here.
    session& s = *self;
    (void)s.log_q_.enqueue<&session::close_req>(std::move(self));
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::close_req>) noexcept {
    add(self->srv_.c.close_req_runs);
    // On the strand, serialised with the requests: one that arrived after the timer fired
    // re-armed it (mod_delayed_work), so if it is pending again this expiry is stale.
    if (wq::delayed_work_pending(self->timeout)) {
      add(self->srv_.c.timeouts_stale);
      return;
    }
    self->close(close_reason::idle);
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::retire>) noexcept {
    server& srv = self->srv_;
    // Nothing re-arms the timeout once the session is closed; after this it cannot run, so it
    // cannot queue onto the ordered queue while that is destroyed.
    if (wq::cancel_delayed_work_sync(self->timeout)) add(srv.c.timeouts_cancelled);
    wq::queue_stats final_stats;
    {
      std::lock_guard lk(self->q_mu_);
      // Off the strand, as drain() and destroy() require: runs the audit records still queued.
      // The last snapshot is taken in between, since a destroyed queue's stats() are empty.
      if (self->log_q_.drain()) add(srv.c.queue_teardown_errors);
      final_stats = self->log_q_.stats();
      if (self->log_q_.destroy()) add(srv.c.queue_teardown_errors);
      self->q_final_ = final_stats;
      self->q_destroyed_ = true;
    }
    srv.retired(self, final_stats);
  }

 private:
  enum class close_reason { idle, peer, shutdown, error };

  void rearm_timeout() {
    // Typed mod_delayed_work: from any state the item ends up armed `idle` from now; if it was
    // already pending the queue keeps its reference and hands ours back.
    auto r =
        wq::mod_delayed_work<&session::timeout>(srv_.timeout_q, shared_from_this(), srv_.idle());
    if (r.status != wq::queue_status::queued) add(srv_.c.timeout_refused);
  }

  void read() {
    asio::async_read_until(
        socket_, asio::dynamic_buffer(in_, max_line_buffer), '\n',
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const error_code& ec) {
    if (closed_) {
      add(srv_.c.discarded, static_cast<std::uint64_t>(std::count(in_.begin(), in_.end(), '\n')));
      return;
    }
    if (ec) {
      close(ec == asio::error::eof ? close_reason::peer : close_reason::error);
      return;
    }
    std::size_t begin = 0;
    for (std::size_t nl = in_.find('\n'); nl != std::string::npos; nl = in_.find('\n', begin)) {
      if (!handle_request(std::string_view(in_).substr(begin, nl - begin))) {
        add(srv_.c.bad_lines);
        close(close_reason::error);
        return;
      }
      begin = nl + 1;
    }
    in_.erase(0, begin);
    write();
    read();
  }

  bool handle_request(std::string_view line) {
    if (!line.starts_with("REQ ")) return false;
    const std::string_view digits = line.substr(4);
    std::uint64_t n = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (err != std::errc{} || end != digits.data() + digits.size()) return false;

    const std::uint64_t index = ++received_;
    add(srv_.c.received);
    // 1. The audit record, on the ordered queue of this very strand: it runs after this handler.
    if (!log_q_.enqueue<&audit_record::item>(std::make_unique<audit_record>(*this, index, n)))
      add(srv_.c.audit_refused);
    // 2. Mark dirty and ask for a flush: a pending flush absorbs the attempt (rule 1).
    dirty_.fetch_add(1, std::memory_order_relaxed);
    switch (srv_.flush_q.enqueue<&session::flush>(shared_from_this()).status) {
      case wq::queue_status::queued:
        add(srv_.c.flush_queued);
        break;
      case wq::queue_status::already_pending:
        add(srv_.c.flush_coalesced);
        break;
      default:
        add(srv_.c.flush_refused);
        break;
    }
    // 3. Push the idle timeout back.
    rearm_timeout();
    // 4. The reply, written from the strand.
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, n);
    out_.append("ACK ").append(buf, res.ptr).push_back('\n');
    ++out_acks_;
    return true;
  }

  void write() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    wbuf_acks_ = out_acks_;
    out_acks_ = 0;
    asio::async_write(
        socket_, asio::buffer(wbuf_),
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(const error_code& ec) {
    writing_ = false;
    add(ec ? srv_.c.replies_lost : srv_.c.replied, wbuf_acks_);
    wbuf_acks_ = 0;
    if (ec && !closed_) {
      close(close_reason::error);
      return;
    }
    if (!ec && !out_.empty()) {
      write();
      return;
    }
    if (closed_) finish_close();
  }

  // Runs on the strand. Replies already produced are written first (graceful close).
  void close(close_reason why) {
    if (closed_) return;
    closed_ = true;
    reason_ = why;
    write();
    if (!writing_) finish_close();
  }

  void finish_close() {
    if (finished_) return;
    finished_ = true;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    switch (reason_) {
      case close_reason::idle:
        add(srv_.c.closed_idle);
        break;
      case close_reason::peer:
        add(srv_.c.closed_peer);
        break;
      case close_reason::shutdown:
        add(srv_.c.closed_shutdown);
        break;
      case close_reason::error:
        add(srv_.c.closed_error);
        break;
    }
    // Destroying the ordered queue waits for this strand, so it is done off the strand.
    auto r = srv_.events_q.enqueue<&session::retire>(shared_from_this());
    if (!r) {
      // Not expected: srv_events drains only once every session has retired. Count it (the
      // summary fails) and unregister, so that the shutdown does not wait forever.
      add(srv_.c.retire_refused);
      srv_.retired(shared_from_this(), wq::queue_stats{});
    }
  }

  struct audit_record {
    audit_record(session& s, std::uint64_t i, std::uint64_t v) : owner(s), index(i), n(v) {}
    // Safety: the session outlives its records: retire destroys (drains) the ordered queue
    // while the session is still registered, before its last reference can go.
    session& owner;
    std::uint64_t index;
    std::uint64_t n;
    wq::work item;
    static void run(std::unique_ptr<audit_record> self, wq::id<&audit_record::item>) noexcept {
      self->owner.audit(self->index, self->n);
    }
  };

  server& srv_;
  socket_type socket_;                   // touched only on the strand
  wq::ordered_workqueue log_q_;          // on socket_'s strand; stats() and destroy() under q_mu_
  std::mutex q_mu_;                      // keeps the monitor's stats() apart from destroy()
  wq::queue_stats q_final_;              // guarded by q_mu_: the last stats, once destroyed
  bool q_destroyed_ = false;             // guarded by q_mu_
  std::atomic<std::uint64_t> dirty_{0};  // requests not yet flushed; see run(flush)
  // Touched only on the strand:
  std::string in_, out_, wbuf_;
  std::uint64_t out_acks_ = 0, wbuf_acks_ = 0;
  std::uint64_t received_ = 0, audited_ = 0;
  bool writing_ = false, closed_ = false, finished_ = false;
  close_reason reason_ = close_reason::error;
};

void server::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](const error_code& ec, socket_type sock) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      add(c.accept_errors);
    } else {
      auto s = std::make_shared<session>(*this, std::move(sock));
      {
        std::lock_guard lk(mu_);
        live_.insert(s);
        ++accepted_;
      }
      asio::post(s->strand(), [s] { s->start(); });
    }
    accept();
  });
}

void server::retired(const std::shared_ptr<session>& s, const wq::queue_stats& final_stats) {
  {
    std::lock_guard lk(mu_);
    live_.erase(s);
    merge(retired_q_, final_stats);
    ++retired_;
  }
  cv_.notify_all();
}

wq::queue_stats server::session_queue_stats(std::uint64_t& count) {
  std::vector<std::shared_ptr<session>> live;
  wq::queue_stats total;
  {
    // One consistent cut: a session is either in live_ or already merged into retired_q_.
    std::lock_guard lk(mu_);
    live.assign(live_.begin(), live_.end());
    total = retired_q_;
    count = accepted_;
  }
  for (const auto& s : live) s->add_queue_stats(total);
  total.name = "session x" + std::to_string(count);
  return total;
}

// Formats a latency percentile (the upper bound of a power-of-two bucket).
std::string format_latency(const wq::latency_histogram& h, double p) {
  if (h.samples() == 0) return "-";
  const double ns = static_cast<double>(h.percentile(p).count());
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fus", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.1fms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", ns / 1e9);
  }
  return buf;
}

// The live table: a delayed item that prints one table and queues itself again for the next
// whole second after start (rule 3: a work function may queue its own item).
class monitor {
 public:
  monitor(server& srv, clock_type::time_point t0) : srv_(srv), t0_(t0) {}
  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  wq::delayed_work tick;

  void start() { (void)srv_.events_q.enqueue_delayed<&monitor::tick>(this, 1s); }
  /// On return the monitor neither is pending nor runs (the raw pointer's contract).
  void stop() { (void)wq::cancel_delayed_work_sync(tick); }

  static void run(monitor* self, wq::id<&monitor::tick>) noexcept {
    self->print(nullptr);
    // The next whole second after start that is still ahead: no drift, and no burst of tables
    // after a late run.
    const auto now = clock_type::now();
    auto next = self->t0_ + std::chrono::seconds(++self->ticks_ + 1);
    while (next <= now) next = self->t0_ + std::chrono::seconds(++self->ticks_ + 1);
    (void)self->srv_.events_q.enqueue_delayed<&monitor::tick>(self, next - now);
  }

  /// Prints one table. Live tables (`label` null) show the last second's queueing latency; a
  /// labelled one shows the whole run's.
  void print(const char* label) {
    const double t = std::chrono::duration<double>(clock_type::now() - t0_).count();
    const std::uint64_t received = get(srv_.c.received);
    const double rate =
        static_cast<double>(received - last_received_) / std::max(t - last_t_, 1e-9);
    last_received_ = received;
    last_t_ = t;
    std::uint64_t sessions = 0;
    const wq::queue_stats rows[nr_rows] = {srv_.flush_q.stats(), srv_.timeout_q.stats(),
                                           srv_.events_q.stats(),
                                           srv_.session_queue_stats(sessions)};
    if (label != nullptr) {
      std::printf("\n[%s] %llu requests, %llu sessions open, %llu closed by idle timeout\n", label,
                  static_cast<unsigned long long>(received),
                  static_cast<unsigned long long>(srv_.open_sessions()),
                  static_cast<unsigned long long>(get(srv_.c.closed_idle)));
    } else {
      std::printf("\n[%5.1f s] %8.0f req/s, %llu sessions open, %llu closed by idle timeout\n", t,
                  rate, static_cast<unsigned long long>(srv_.open_sessions()),
                  static_cast<unsigned long long>(get(srv_.c.closed_idle)));
    }
    const char* span = label != nullptr ? "run" : "1s";
    char p50[16], p99[16];
    std::snprintf(p50, sizeof p50, "p50(%s)", span);
    std::snprintf(p99, sizeof p99, "p99(%s)", span);
    std::printf("%-14s %10s %9s %6s %10s %9s %9s %9s\n", "queue", "total", "in flight", "armed",
                "coalesced", "cancelled", p50, p99);
    for (std::size_t i = 0; i < nr_rows; ++i) {
      const wq::queue_stats& r = rows[i];
      // Histograms only grow, so the last second's is the difference from the previous table.
      wq::latency_histogram latency = r.queue_latency;
      if (label == nullptr) {
        for (std::size_t b = 0; b < latency.counts.size(); ++b)
          latency.counts[b] -= std::min(latency.counts[b], prev_latency_[i].counts[b]);
      }
      prev_latency_[i] = r.queue_latency;
      std::printf(
          "%-14s %10llu %9llu %6llu %10llu %9llu %9s %9s\n", r.name.c_str(),
          static_cast<unsigned long long>(r.queued), static_cast<unsigned long long>(r.in_flight),
          static_cast<unsigned long long>(r.armed), static_cast<unsigned long long>(r.coalesced),
          static_cast<unsigned long long>(r.cancelled), format_latency(latency, 50).c_str(),
          format_latency(latency, 99).c_str());
    }
    std::fflush(stdout);
  }

 private:
  static constexpr std::size_t nr_rows = 4;

  server& srv_;
  const clock_type::time_point t0_;
  // Touched by one run at a time (rule 9), then by main after stop().
  long ticks_ = 0;
  std::uint64_t last_received_ = 0;
  double last_t_ = 0;
  wq::latency_histogram prev_latency_[nr_rows];
};

// The load generator: `connections` connections on one thread of its own. Each writes batches of
// 1-16 requests and waits for their replies, in order; the last `idle_connections` stop after a
// few batches and wait for the server to close them. At the deadline the others finish their
// batch and fall quiet; the server's shutdown then closes them.
class client {
 public:
  client(const tcp::endpoint& ep, int connections, int idle_connections,
         std::chrono::seconds run_for)
      : ep_(ep), run_for_(run_for), quiesced_(connections) {
    for (int i = 0; i < connections; ++i)
      conns_.push_back(std::make_unique<conn>(*this, i, i >= connections - idle_connections));
  }

  /// The client thread's body: returns once every connection was closed.
  void run() {
    stop_timer_.expires_after(run_for_);
    stop_timer_.async_wait([this](const error_code&) { stopping_ = true; });
    for (auto& c : conns_) c->start();
    io_.run();
  }
  /// Waits until no connection has a request in flight and the active ones stopped sending.
  void wait_quiesced() { quiesced_.wait(); }

  // Written on the client thread; read by main after it was joined.
  std::uint64_t connected = 0, connect_failed = 0;
  std::uint64_t sent = 0, acked = 0, bad_replies = 0;
  std::uint64_t idle_closed = 0, idle_in_flight = 0, idle_not_timed_out = 0;
  std::uint64_t closed_at_shutdown = 0, closed_early = 0, lost_in_flight = 0;

 private:
  class conn {
   public:
    conn(client& cl, int index, bool goes_idle)
        : cl_(cl),
          sock_(cl.io_),
          goes_idle_(goes_idle),
          rng_(static_cast<std::minstd_rand::result_type>(index) + 1) {}

    void start() {
      sock_.async_connect(cl_.ep_, [this](const error_code& ec) {
        if (ec) {
          ++cl_.connect_failed;
          state_ = state::done;
          quiesce();
          return;
        }
        ++cl_.connected;
        error_code ignored;
        sock_.set_option(tcp::no_delay(true), ignored);
        read();
        next();
      });
    }

   private:
    enum class state { busy, idle, quiet, done };

    void next() {
      if (writing_ || acked_ != sent_ || state_ != state::busy) return;
      if (cl_.stopping_) {
        state_ = state::quiet;
        quiesce();
      } else if (goes_idle_ && batches_ >= idle_after_batches) {
        state_ = state::idle;
        quiesce();
      } else {
        send_batch();
      }
    }

    void send_batch() {
      const auto n = static_cast<int>(rng_() % max_batch) + 1;
      out_.clear();
      char buf[32];
      for (int k = 0; k < n; ++k) {
        const auto res = std::to_chars(buf, buf + sizeof buf, ++sent_);
        out_.append("REQ ").append(buf, res.ptr).push_back('\n');
      }
      cl_.sent += static_cast<std::uint64_t>(n);
      ++batches_;
      writing_ = true;
      asio::async_write(sock_, asio::buffer(out_), [this](const error_code& ec, std::size_t) {
        writing_ = false;
        if (ec) {
          closed(ec);
          return;
        }
        next();
      });
    }

    void read() {
      asio::async_read_until(sock_, asio::dynamic_buffer(in_, max_line_buffer), '\n',
                             [this](const error_code& ec, std::size_t) { on_read(ec); });
    }

    void on_read(const error_code& ec) {
      if (ec) {
        closed(ec);
        return;
      }
      std::size_t begin = 0;
      for (std::size_t nl = in_.find('\n'); nl != std::string::npos; nl = in_.find('\n', begin)) {
        const std::string_view line = std::string_view(in_).substr(begin, nl - begin);
        begin = nl + 1;
        // Replies come back in request order: the next one must acknowledge acked_ + 1.
        char buf[32];
        const auto res = std::to_chars(buf, buf + sizeof buf, acked_ + 1);
        if (line.size() != 4 + static_cast<std::size_t>(res.ptr - buf) ||
            !line.starts_with("ACK ") || line.substr(4) != std::string_view(buf, res.ptr)) {
          ++cl_.bad_replies;
          continue;
        }
        ++acked_;
        ++cl_.acked;
      }
      in_.erase(0, begin);
      next();
      read();
    }

    // The server closed the connection (or it failed).
    void closed(const error_code&) {
      if (state_ == state::done) return;
      switch (state_) {
        case state::idle:
          // The idle timeout must have closed it during the run, with nothing in flight.
          if (cl_.stopping_) {
            ++cl_.idle_not_timed_out;
          } else {
            ++cl_.idle_closed;
          }
          cl_.idle_in_flight += sent_ - acked_;
          break;
        case state::quiet:
          ++cl_.closed_at_shutdown;
          break;
        default:
          ++cl_.closed_early;
          cl_.lost_in_flight += sent_ - acked_;
          break;
      }
      state_ = state::done;
      error_code ignored;
      sock_.close(ignored);
      quiesce();
    }

    void quiesce() {
      if (quiesced_) return;
      quiesced_ = true;
      cl_.quiesced_.count_down();
    }

    client& cl_;
    tcp::socket sock_;
    const bool goes_idle_;
    std::minstd_rand rng_;
    // Touched only on the client thread:
    std::string out_, in_;
    std::uint64_t sent_ = 0, acked_ = 0, batches_ = 0;
    state state_ = state::busy;
    bool writing_ = false, quiesced_ = false;
  };

  asio::io_context io_{1};
  const tcp::endpoint ep_;
  const std::chrono::seconds run_for_;
  asio::steady_timer stop_timer_{io_};
  bool stopping_ = false;  // touched only on the client thread
  std::latch quiesced_;    // one count per connection
  std::vector<std::unique_ptr<conn>> conns_;
};

struct options {
  int connections = 200;
  int seconds = 10;
  int threads = 2;
};

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: wq_server [--connections N] [--seconds S] [--threads T] [--help]\n"
               "  Runs a TCP server on 127.0.0.1 and a built-in client against it, prints a\n"
               "  table of the work queues once a second and a summary at the end; exits 0 if\n"
               "  nothing was lost.\n"
               "  --connections N  client connections, 1-5000 (default 200); one in ten goes idle\n"
               "  --seconds S      how long the client sends requests, 1-3600 (default 10)\n"
               "  --threads T      threads running the server's io_context, 1-64 (default 2)\n");
}

int bad_usage(const std::string& what) {
  std::fprintf(stderr, "wq_server: %s\nTry 'wq_server --help'.\n", what.c_str());
  return 2;
}

// Returns -1 to go on, or the exit status.
int parse_options(int argc, char** argv, options& opt) {
  struct spec {
    std::string_view name;
    int* value;
    int min, max;
  };
  const spec specs[] = {{"--connections", &opt.connections, 1, 5000},
                        {"--seconds", &opt.seconds, 1, 3600},
                        {"--threads", &opt.threads, 1, 64}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return 0;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const auto* s = std::find_if(std::begin(specs), std::end(specs),
                                 [&](const spec& x) { return x.name == name; });
    if (!arg.starts_with("-")) return bad_usage("unexpected argument '" + std::string(arg) + "'");
    if (s == std::end(specs)) return bad_usage("unknown option '" + std::string(arg) + "'");
    if (!has_value) {
      if (i + 1 >= argc) return bad_usage("option " + std::string(name) + " needs a value");
      value = argv[++i];
    }
    int v = 0;
    const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), v);
    const bool whole = !value.empty() && end == value.data() + value.size();
    if (whole && (err == std::errc::result_out_of_range ||
                  (err == std::errc{} && (v < s->min || v > s->max)))) {
      return bad_usage(std::string(name) + " must be between " + std::to_string(s->min) + " and " +
                       std::to_string(s->max) + ", not " + std::string(value));
    }
    if (!whole || err != std::errc{})
      return bad_usage(std::string(name) + " expects a whole number, not '" + std::string(value) +
                       "'");
    *s->value = v;
  }
  return -1;
}

// Each connection takes two descriptors in this process (client and server side). Raises the
// soft limit if it is too low; returns false if even the hard limit is.
bool enough_descriptors(int connections, rlim_t& limit) {
  const rlim_t need = static_cast<rlim_t>(connections) * 2 + 64;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;
  limit = rl.rlim_cur;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    limit = rl.rlim_max;
    return false;
  }
  rl.rlim_cur = need;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (const int rc = parse_options(argc, argv, opt); rc >= 0) return rc;
  if (rlim_t limit = 0; !enough_descriptors(opt.connections, limit)) {
    return bad_usage("--connections " + std::to_string(opt.connections) + " needs about " +
                     std::to_string(opt.connections * 2 + 64) + " file descriptors; the limit is " +
                     std::to_string(limit) + " (raise it with ulimit -n)");
  }
  wq::set_diagnostic_handler(&count_diagnostic);

  // The idle timeout fires within the run: idle connections stop after a few batches.
  const auto idle = std::chrono::milliseconds(std::min(1500, opt.seconds * 500));
  const int idle_connections = opt.connections < 2 ? 0 : std::max(1, opt.connections / 10);
  const auto connections = static_cast<std::uint64_t>(opt.connections);
  const auto idle_count = static_cast<std::uint64_t>(idle_connections);

  asio::io_context io(opt.threads);
  asio::thread_pool workers(worker_threads);
  std::vector<std::string> failures;
  {
    server srv(io, workers, idle);
    tcp::endpoint ep;
    try {
      ep = srv.listen();
    } catch (const boost::system::system_error& e) {
      std::fprintf(stderr, "wq_server: cannot listen on 127.0.0.1: %s\n", e.what());
      return 1;
    }
    std::printf(
        "wq_server on %s:%u: %d connections (%d go idle), %d s, idle timeout %lld ms,\n"
        "  %d io thread%s + %u queue workers; work item %zu B, delayed item %zu B\n",
        ep.address().to_string().c_str(), static_cast<unsigned>(ep.port()), opt.connections,
        idle_connections, opt.seconds, static_cast<long long>(idle.count()), opt.threads,
        opt.threads == 1 ? "" : "s", worker_threads, sizeof(wq::work), sizeof(wq::delayed_work));
    std::fflush(stdout);

    const auto t0 = clock_type::now();
    auto guard = asio::make_work_guard(io);
    std::vector<std::thread> io_threads;
    for (int i = 0; i < opt.threads; ++i) io_threads.emplace_back([&io] { io.run(); });
    srv.start_accepting();
    monitor mon(srv, t0);
    mon.start();
    client cl(ep, opt.connections, idle_connections, std::chrono::seconds(opt.seconds));
    std::thread client_thread([&cl] { cl.run(); });

    // Graceful shutdown: the client falls quiet, then every session's timeout is cancelled and
    // the session closed; each retires (its ordered queue destroyed) and the queues drain.
    cl.wait_quiesced();
    srv.stop_accepting();
    for (const auto& s : srv.live_sessions()) s->shut_down();
    srv.wait_all_retired();
    client_thread.join();
    mon.stop();
    for (wq::workqueue* q : {&srv.flush_q, &srv.timeout_q, &srv.events_q}) {
      if (const std::error_code ec = q->drain())
        failures.push_back(q->name() + ".drain(): " + ec.message());
    }
    mon.print("final");
    guard.reset();
    for (auto& t : io_threads) t.join();
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();

    const server_counters& c = srv.c;
    const wq::queue_stats fs = srv.flush_q.stats();
    std::uint64_t nr_session_queues = 0;
    const wq::queue_stats ss = srv.session_queue_stats(nr_session_queues);
    const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf("\nsummary after %.1f s\n", secs);
    std::printf("  connections   %llu opened, %llu accepted, %llu went idle\n", u(cl.connected),
                u(srv.accepted()), u(idle_count));
    std::printf(
        "  requests      %llu sent, %llu answered in order, %llu in flight on closed "
        "connections, %llu bad replies\n",
        u(cl.sent), u(cl.acked), u(cl.idle_in_flight + cl.lost_in_flight), u(cl.bad_replies));
    std::printf(
        "  server        %llu received, %llu replied, %llu audited in order (%llu out "
        "of order)\n",
        u(get(c.received)), u(get(c.replied)), u(get(c.audited)), u(get(c.audit_out_of_order)));
    std::printf(
        "  flush         %llu queue attempts: %llu queued, %llu coalesced "
        "(already_pending); %llu runs (%llu empty) persisted %llu requests\n",
        u(get(c.flush_queued) + get(c.flush_coalesced) + get(c.flush_refused)),
        u(get(c.flush_queued)), u(get(c.flush_coalesced)), u(get(c.flush_runs)),
        u(get(c.flush_empty)), u(get(c.flushed)));
    std::printf("  srv_flush     stats(): %llu queued, %llu coalesced, %llu finished\n",
                u(fs.queued), u(fs.coalesced), u(fs.finished));
    std::printf(
        "  session x%llu  stats(): %llu queued, %llu finished (%llu audit records + %llu "
        "closes)\n",
        u(nr_session_queues), u(ss.queued), u(ss.finished), u(get(c.audited)),
        u(get(c.close_req_runs)));
    std::printf(
        "  idle timeouts %llu fired (%llu stale), %llu sessions closed by them; client "
        "saw %llu idle connections closed\n",
        u(get(c.timeouts_fired)), u(get(c.timeouts_stale)), u(get(c.closed_idle)),
        u(cl.idle_closed));
    std::printf(
        "  shutdown      %llu timeouts cancelled, %llu sessions closed (client saw "
        "%llu), %llu closed by peer, %llu on error\n",
        u(get(c.timeouts_cancelled)), u(get(c.closed_shutdown)), u(cl.closed_at_shutdown),
        u(get(c.closed_peer)), u(get(c.closed_error)));
    std::printf("  sessions      %llu constructed, %llu destroyed\n",
                u(get(c.sessions_constructed)), u(get(c.sessions_destroyed)));
    std::printf("  wq            %llu misuse reports, %llu notices\n", u(get(g_misuse)),
                u(get(g_notices)));

    const auto expect = [&failures](bool ok, const std::string& what) {
      if (!ok) failures.push_back(what);
    };
    expect(cl.connected == connections && cl.connect_failed == 0,
           "not every client connection was established");
    expect(srv.accepted() == connections && get(c.accept_errors) == 0,
           "not every connection was accepted");
    expect(cl.sent == cl.acked + cl.idle_in_flight + cl.lost_in_flight,
           "requests sent != answered + in flight on closed connections");
    expect(cl.idle_in_flight == 0 && cl.lost_in_flight == 0 && cl.closed_early == 0,
           "requests were in flight on a closed connection");
    expect(cl.bad_replies == 0, "the client got unexpected or out-of-order replies");
    expect(get(c.received) == cl.sent && get(c.replied) == get(c.received) &&
               get(c.replies_lost) == 0 && get(c.discarded) == 0 && get(c.bad_lines) == 0,
           "server received/replied does not match requests sent");
    expect(get(c.audited) == get(c.received) && get(c.audit_out_of_order) == 0 &&
               get(c.audit_refused) == 0,
           "audit records lost or out of order");
    expect(get(c.flush_queued) + get(c.flush_coalesced) == get(c.received) &&
               get(c.flush_refused) == 0,
           "a flush queue attempt per request, each queued or coalesced");
    expect(get(c.flush_runs) == get(c.flush_queued) && get(c.flushed) == get(c.received),
           "flush runs != flushes queued, or requests not all persisted");
    expect(fs.queued == get(c.flush_queued) && fs.coalesced == get(c.flush_coalesced) &&
               fs.finished == get(c.flush_runs) && fs.in_flight == 0,
           "srv_flush stats() disagree with the counted queue attempts and runs");
    expect(ss.queued == ss.finished && ss.finished == get(c.audited) + get(c.close_req_runs) &&
               ss.in_flight == 0,
           "the session queues' stats() disagree with the audit records and closes that ran");
    expect(get(c.closed_idle) == idle_count && cl.idle_closed == idle_count &&
               cl.idle_not_timed_out == 0,
           "idle connections were not all closed by their idle timeout");
    expect(get(c.closed_shutdown) == connections - idle_count &&
               cl.closed_at_shutdown == connections - idle_count && get(c.closed_peer) == 0 &&
               get(c.closed_error) == 0,
           "active sessions were not all closed by the shutdown");
    expect(get(c.timeout_refused) == 0 && get(c.retire_refused) == 0 &&
               get(c.queue_teardown_errors) == 0,
           "a timeout, retire or queue destroy was refused");
    expect(get(c.sessions_constructed) == connections &&
               get(c.sessions_destroyed) == get(c.sessions_constructed),
           "session objects were not all released");
    expect(get(g_misuse) == 0, "wq reported misuse");
  }
  workers.join();
  if (!failures.empty()) {
    for (const auto& f : failures) std::printf("FAILED: %s\n", f.c_str());
    return 1;
  }
  std::printf("OK: every request answered, every flush accounted for, every session released\n");
  return 0;
}
