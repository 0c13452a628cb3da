// SPDX-License-Identifier: BSL-1.0
// wq_server: the flagship sample. A TCP server whose sessions embed wq work items. By default it
// listens on 127.0.0.1 and drives itself with a built-in load client for ten seconds (the Quick
// start's first command); `--clients 0` runs the server alone until SIGINT or SIGTERM, for any
// outside client (`socat - TCP:127.0.0.1:PORT`).
//
// Protocol (also in --help and the README): a line "REQ <n>" (n an unsigned 64-bit decimal) is
// answered "ACK <n>"; lines end in "\n" or "\r\n", replies in "\n". A malformed line, or one
// longer than 64 KiB, is answered "ERR <reason>" and the connection is closed after the replies
// before it. A connection is closed after --idle-ms without a request received or a reply
// written. A session whose unsent replies exceed 64 KiB stops reading until they drain.
//
// Each session (std::shared_ptr-owned) embeds:
//   - `timeout`: the idle timeout, a delayed item re-armed by the typed mod_delayed_work on every
//     request and every reply written (rule 20). When it fires, the session's strand decides.
//   - `flush`: a coalescing item. Every request marks the session dirty and queues it; while it is
//     pending, further attempts return already_pending (rule 1), so one run persists many.
//   - an ordered_workqueue built on the socket's strand: audit records run one at a time in
//     request order (rule 39), serialised with the socket's handlers, so they need no lock.
//   - `close_req` and `retire`: the hand-offs between the strand and the shared queues.
// A self-requeueing delayed item prints a live per-queue table once a second (the kernel's
// wq_monitor.py).
//
// Shutdown (a signal, --seconds, or the built-in client finishing) stops accepting, cancels every
// timeout (cancel_delayed_work_sync), closes every session (sockets with a write still pending
// are closed at once, their replies counted as lost), destroys every ordered queue and drains the
// shared ones. The summary checks the server's own invariants and exits 1 if one is broken.
#include <wq/stats.hpp>
#include <wq/wq.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
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
#include <boost/asio/signal_set.hpp>
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

constexpr std::size_t max_line = 64 * 1024;    // longest request line, without its line end
constexpr std::size_t max_unsent = 64 * 1024;  // unsent replies above which a session stops reading
constexpr unsigned worker_threads = 2;         // the shared queues' pool: a 2-core machine
constexpr int max_batch = 16;                  // requests the built-in client writes at once
constexpr std::uint64_t idle_after_batches = 4;  // batches an idle client connection sends first
constexpr auto shutdown_limit = 10s;             // the longest the shutdown may take

// Relaxed tallies: each is read for the summary only after the threads that wrote it were
// joined or the queues that ran them were drained (both order the writes), or by the monitor,
// for which a value a moment old is fine.
struct server_counters {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> replied{0};
  std::atomic<std::uint64_t> replies_lost{0};  // connection reset, or closed with replies unsent
  std::atomic<std::uint64_t> discarded{0};     // lines read after the session began closing
  std::atomic<std::uint64_t> bad_malformed{0};
  std::atomic<std::uint64_t> bad_too_long{0};
  std::atomic<std::uint64_t> bad_range{0};
  std::atomic<std::uint64_t> read_pauses{0};  // backpressure: reading stopped for unsent replies
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
  std::atomic<std::uint64_t> timeouts_deferred{0};  // fired while replies were waiting to be sent
  std::atomic<std::uint64_t> close_req_runs{0};
  std::atomic<std::uint64_t> timeouts_cancelled{0};
  std::atomic<std::uint64_t> closed_idle{0};
  std::atomic<std::uint64_t> closed_peer{0};
  std::atomic<std::uint64_t> closed_reset{0};
  std::atomic<std::uint64_t> closed_bad{0};
  std::atomic<std::uint64_t> closed_shutdown{0};
  std::atomic<std::uint64_t> closed_error{0};
  std::atomic<std::uint64_t> closes_cut_short{0};  // graceful closes the peer did not complete
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

// "HOST:PORT", with an IPv6 address in brackets.
std::string format_endpoint(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
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
        acceptor_(acceptor_strand_),
        accept_retry_(acceptor_strand_) {}

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Listens on `ep` (port 0: one the system chooses) and returns the bound endpoint. Call before
  /// start_accepting(). Throws: boost::system::system_error.
  tcp::endpoint listen(const tcp::endpoint& ep) {
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
      accept_retry_.cancel();
      done.set_value();
    });
    done.get_future().wait();
  }

  std::vector<std::shared_ptr<session>> live_sessions() {
    std::lock_guard lk(mu_);
    return {live_.begin(), live_.end()};
  }
  /// Waits until every accepted session has retired, or `limit` passed; returns how many have
  /// not. Preconditions: stop_accepting() returned.
  std::uint64_t wait_all_retired(std::chrono::milliseconds limit) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [this] { return retired_ == accepted_; });
    return accepted_ - retired_;
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
  tcp::acceptor acceptor_;           // touched only on acceptor_strand_ (after listen())
  asio::steady_timer accept_retry_;  // touched only on acceptor_strand_

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<std::shared_ptr<session>> live_;  // guarded by mu_
  wq::queue_stats retired_q_;                          // guarded by mu_
  std::uint64_t accepted_ = 0;                         // guarded by mu_
  std::uint64_t retired_ = 0;                          // guarded by mu_
};

// One accepted connection. Its socket handlers, its audit records and its close all run on the
// socket's strand; flush, timeout and retire run on the server's shared queues.
//
// Closing, on the strand. A graceful close (idle, bad request, peer's end of stream) writes the
// replies already produced, shuts the sending side down and reads (discarding) until the peer
// closes too, so that no unread input turns the close into a reset that destroys the replies in
// flight; the idle timeout bounds that wait. An abort (shutdown with a write pending, reset,
// error) closes the socket at once; the replies not written are counted as lost. Either way
// finish() runs once, when no socket operation is outstanding, and hands the session to
// `retire`.
class session : public std::enable_shared_from_this<session> {
 public:
  session(server& srv, socket_type socket)
      : srv_(srv), socket_(std::move(socket)), log_q_(socket_.get_executor(), "session") {
    add(srv_.c.sessions_constructed);
  }
  ~session() { add(srv_.c.sessions_destroyed); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// The idle timeout: fires `idle` after the last request or reply written, on srv_timeout.
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

  /// The shutdown path, from any thread: closes the connection on the strand without waiting
  /// for a pending write. The timeout is cancelled by `retire`: once the session has finished
  /// nothing re-arms it, whereas a cancel from here would race with a request re-arming it.
  void shut_down() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->shutdown_close(); });
  }

  /// Adds this session's ordered-queue statistics to `into`. Any thread.
  void add_queue_stats(wq::queue_stats& into) {
    std::lock_guard lk(q_mu_);
    merge(into, q_destroyed_ ? q_final_ : log_q_.stats());
  }

  /// An audit record, run by the ordered queue on the strand, in request order.
  void audit(std::uint64_t index) {
    // Rule 39: records run in the order they were queued. The server numbered them 1, 2, 3...
    // as it received the requests, so each must follow the one before.
    if (index != audited_ + 1) add(srv_.c.audit_out_of_order);
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
    // The socket belongs to the strand: hand the decision to the ordered queue, which runs on
    // it. already_pending: a close_req is on its way; the retire path cancels this item before
    // it destroys the queue, so the queue is alive here.
    session& s = *self;
    (void)s.log_q_.enqueue<&session::close_req>(std::move(self));
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::close_req>) noexcept {
    add(self->srv_.c.close_req_runs);
    self->on_timeout();
  }

  static void run(std::shared_ptr<session> self, wq::id<&session::retire>) noexcept {
    server& srv = self->srv_;
    // Nothing re-arms the timeout once the session has finished; after this it cannot run, so it
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
  enum class close_reason { idle, peer, reset, bad_request, shutdown, error };

  void rearm_timeout() {
    // Typed mod_delayed_work: from any state the item ends up armed `idle` from now; if it was
    // already pending the queue keeps its reference and hands ours back.
    auto r =
        wq::mod_delayed_work<&session::timeout>(srv_.timeout_q, shared_from_this(), srv_.idle());
    if (r.status != wq::queue_status::queued) add(srv_.c.timeout_refused);
  }

  // The idle timeout fired and its close_req reached the strand.
  void on_timeout() {
    // Serialised with the requests: one that arrived after the timer fired re-armed it
    // (mod_delayed_work), so if it is pending again this expiry is stale.
    if (wq::delayed_work_pending(timeout)) {
      add(srv_.c.timeouts_stale);
      return;
    }
    if (finished_) return;
    if (closed_) {
      // A graceful close the peer has not completed within the idle time: give up on it.
      add(srv_.c.closes_cut_short);
      abort();
    } else if (writing_) {
      // Replies are waiting to be sent: the connection is not idle. The write's completion
      // re-arms the timeout; a shutdown closes the socket if it never completes.
      add(srv_.c.timeouts_deferred);
    } else {
      close(close_reason::idle);
    }
  }

  // Unsent replies: those being written and those produced since.
  [[nodiscard]] std::size_t unsent() const { return out_.size() + (writing_ ? wbuf_.size() : 0); }

  void read() {
    reading_ = true;
    // One byte over the longest line and its "\r\n": a buffer that fills without a '\n' holds a
    // line that is too long (error::not_found).
    asio::async_read_until(
        socket_, asio::dynamic_buffer(in_, max_line + 3), '\n',
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const error_code& ec) {
    reading_ = false;
    if (closed_) {
      // Closing: the input is read only so that the peer's end of stream can be seen.
      add(srv_.c.discarded, static_cast<std::uint64_t>(std::count(in_.begin(), in_.end(), '\n')));
      in_.clear();
      if (ec) {
        peer_done_ = true;
      } else if (!aborted_) {
        read();
      }
      maybe_finish();
      return;
    }
    if (ec == asio::error::not_found) {
      reject(srv_.c.bad_too_long, "line too long");
      return;
    }
    if (ec == asio::error::eof) {
      peer_done_ = true;  // a half-close: the replies still go out
      close(close_reason::peer);
      return;
    }
    if (ec) {
      close_abruptly(ec);
      return;
    }
    process();
  }

  // Handles the complete lines in in_ until the unsent replies exceed max_unsent; then stops
  // reading until on_write() has drained them (backpressure), else reads on.
  void process() {
    std::size_t begin = 0;
    while (unsent() <= max_unsent) {
      const std::size_t nl = in_.find('\n', begin);
      if (nl == std::string::npos) break;
      std::string_view line = std::string_view(in_).substr(begin, nl - begin);
      begin = nl + 1;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.size() > max_line) {
        in_.erase(0, begin);
        reject(srv_.c.bad_too_long, "line too long");
        return;
      }
      if (!handle_request(line)) {
        in_.erase(0, begin);
        return;
      }
    }
    in_.erase(0, begin);
    write();
    if (unsent() > max_unsent) {
      if (!paused_) add(srv_.c.read_pauses);
      paused_ = true;
      return;
    }
    paused_ = false;
    read();  // the loop ended for want of a complete line
  }

  // Returns false if the line was rejected (and the session is closing).
  bool handle_request(std::string_view line) {
    if (!line.starts_with("REQ ") || line.size() == 4) {
      reject(srv_.c.bad_malformed, "expected REQ <n>");
      return false;
    }
    const std::string_view digits = line.substr(4);
    std::uint64_t n = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (end != digits.data() + digits.size() ||
        (err != std::errc{} && err != std::errc::result_out_of_range)) {
      reject(srv_.c.bad_malformed, "expected REQ <n>");
      return false;
    }
    if (err == std::errc::result_out_of_range) {
      reject(srv_.c.bad_range, "number out of range");
      return false;
    }

    const std::uint64_t index = ++received_;
    add(srv_.c.received);
    // 1. The audit record, on the ordered queue of this very strand: it runs after this handler.
    if (!log_q_.enqueue<&audit_record::item>(std::make_unique<audit_record>(*this, index)))
      add(srv_.c.audit_refused);
    // 2. Mark dirty and ask for a flush: a pending flush absorbs the attempt (rule 1).
    dirty_.fetch_add(1, std::memory_order_relaxed);
    switch (srv_.flush_q.enqueue<&session::flush>(shared_from_this()).status) {
      case wq::queue_status::queued: add(srv_.c.flush_queued); break;
      case wq::queue_status::already_pending: add(srv_.c.flush_coalesced); break;
      default: add(srv_.c.flush_refused); break;
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

  // A bad line: its ERR reply goes out after the replies before it, then the session closes.
  void reject(std::atomic<std::uint64_t>& kind, std::string_view reason) {
    add(kind);
    out_.append("ERR ").append(reason).push_back('\n');
    close(close_reason::bad_request);
  }

  void write() {
    if (writing_ || out_.empty() || aborted_) return;
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
    if (ec) {
      close_abruptly(ec);
      return;
    }
    if (aborted_) {
      maybe_finish();
      return;
    }
    rearm_timeout();  // a reply written is progress: the idle time counts from here
    if (closed_) {
      write();
      if (!writing_) linger();
      return;
    }
    write();
    if (paused_ && unsent() <= max_unsent) process();
  }

  // Graceful close. Replies already produced are written first.
  void close(close_reason why) {
    if (closed_) return;
    closed_ = true;
    reason_ = why;
    write();
    if (!writing_) linger();
  }

  // Every reply is written: end the sending side and wait for the peer's end of stream.
  void linger() {
    if (lingering_ || aborted_) return;
    lingering_ = true;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (!peer_done_) {
      rearm_timeout();  // bounds the wait for the peer (on_timeout aborts)
      if (!reading_) read();
    }
    maybe_finish();
  }

  // The connection failed (reset by the peer, or another error): nothing more can be sent.
  void close_abruptly(const error_code& ec) {
    if (!closed_) {
      closed_ = true;
      reason_ = (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
                    ? close_reason::reset
                    : close_reason::error;
    }
    abort();
  }

  // The shutdown: a session with nothing being written closes both directions now; one with a
  // write pending is closed without waiting for it.
  void shutdown_close() {
    if (finished_) return;
    if (!closed_) {
      closed_ = true;
      reason_ = close_reason::shutdown;
    }
    if (!writing_) {
      error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_both, ignored);
    }
    abort();
  }

  // Closes the socket at once; its outstanding operations complete with an error.
  void abort() {
    if (!aborted_) {
      aborted_ = true;
      error_code ignored;
      socket_.close(ignored);
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (finished_) return;
    if (aborted_ ? (reading_ || writing_) : !(lingering_ && peer_done_)) return;
    finished_ = true;
    add(srv_.c.replies_lost, out_acks_);  // produced after the socket failed or was closed
    out_acks_ = 0;
    error_code ignored;
    socket_.close(ignored);
    switch (reason_) {
      case close_reason::idle: add(srv_.c.closed_idle); break;
      case close_reason::peer: add(srv_.c.closed_peer); break;
      case close_reason::reset: add(srv_.c.closed_reset); break;
      case close_reason::bad_request: add(srv_.c.closed_bad); break;
      case close_reason::shutdown: add(srv_.c.closed_shutdown); break;
      case close_reason::error: add(srv_.c.closed_error); break;
    }
    // Destroying the ordered queue waits for this strand, so it is done off the strand.
    auto r = srv_.events_q.enqueue<&session::retire>(shared_from_this());
    if (!r) {
      // Not expected: srv_events drains only once every session has retired. Count it (the
      // summary fails) and unregister, so that the shutdown does not wait for it.
      add(srv_.c.retire_refused);
      srv_.retired(shared_from_this(), wq::queue_stats{});
    }
  }

  struct audit_record {
    audit_record(session& s, std::uint64_t i) : owner(s), index(i) {}
    // Safety: the session outlives its records: retire destroys (drains) the ordered queue
    // while the session is still registered, before its last reference can go.
    session& owner;
    std::uint64_t index;
    wq::work item;
    static void run(std::unique_ptr<audit_record> self, wq::id<&audit_record::item>) noexcept {
      self->owner.audit(self->index);
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
  bool reading_ = false, writing_ = false, paused_ = false;
  bool closed_ = false;     // no further request is handled
  bool lingering_ = false;  // every reply written and the sending side shut down
  bool peer_done_ = false;  // the peer's end of stream (or an error) was read
  bool aborted_ = false;    // the socket was closed
  bool finished_ = false;   // counted and handed to retire
  close_reason reason_ = close_reason::error;
};

void server::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](const error_code& ec, socket_type sock) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. out of file descriptors: try again shortly rather than spin.
      add(c.accept_errors);
      accept_retry_.expires_after(100ms);
      accept_retry_.async_wait([this](const error_code& wait_ec) {
        if (!wait_ec && acceptor_.is_open()) accept();
      });
      return;
    }
    auto s = std::make_shared<session>(*this, std::move(sock));
    {
      std::lock_guard lk(mu_);
      live_.insert(s);
      ++accepted_;
    }
    asio::post(s->strand(), [s] { s->start(); });
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

// The built-in load client: `connections` connections on one thread of its own. Each writes
// batches of 1-16 requests numbered 1, 2, 3... and checks that the replies acknowledge them in
// order; the last `idle_connections` stop after a few batches and wait for the server to close
// them. At the deadline (or stop()) the others finish their batch and fall quiet; the server's
// shutdown then closes them.
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
  /// Ends the run early (a signal), from any thread: the connections finish their batch and fall
  /// quiet, as at the deadline.
  void stop() {
    asio::post(io_, [this] {
      stopping_ = true;
      stop_timer_.cancel();
    });
  }

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
      asio::async_read_until(sock_, asio::dynamic_buffer(in_, max_line + 3), '\n',
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
        case state::quiet: ++cl_.closed_at_shutdown; break;
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
  std::string listen = "127.0.0.1:0";
  int clients = 200;
  int seconds = 0;  // 0: not given
  int threads = 2;
  int idle_ms = 0;  // 0: not given
  bool quiet = false;
};

void print_usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: wq_server [--listen HOST:PORT] [--clients N] [--seconds S] [--idle-ms MS]\n"
      "                 [--threads T] [--quiet] [--help]\n"
      "  A TCP server whose sessions embed wq work items. It prints a table of its work\n"
      "  queues once a second and a summary at the end, and exits 0 if the summary's checks\n"
      "  hold, 1 if one fails, 2 on a bad option.\n"
      "\n"
      "  --listen HOST:PORT  address to listen on (default 127.0.0.1:0; PORT 0 picks a free\n"
      "                      port; IPv6 as [::1]:PORT). The first line printed is\n"
      "                      'listening on HOST:PORT' with the real port.\n"
      "  --clients N         connections of the built-in load client, 0-5000 (default 200;\n"
      "                      --connections is an alias). One in ten goes idle so that its\n"
      "                      idle timeout fires. 0 runs the server alone, until SIGINT or\n"
      "                      SIGTERM (or --seconds).\n"
      "  --seconds S         with clients: how long they send requests, 1-86400 (default 10);\n"
      "                      with --clients 0: stop after S seconds (default: run until a\n"
      "                      signal)\n"
      "  --idle-ms MS        close a connection after MS ms without a request received or a\n"
      "                      reply written, 1-3600000 (default 1500; with clients, at most\n"
      "                      half of --seconds)\n"
      "  --threads T         threads running the server's io_context, 1-64 (default 2)\n"
      "  --quiet             no table each second (the final one is printed)\n"
      "\n"
      "  Protocol: a line 'REQ <n>' (n an unsigned 64-bit decimal) is answered 'ACK <n>'.\n"
      "  Lines end in \\n or \\r\\n; replies end in \\n. A malformed line, or one longer than\n"
      "  64 KiB, is answered 'ERR <reason>' and the connection is closed. A session with over\n"
      "  64 KiB of unsent replies stops reading until they drain. Try it by hand:\n"
      "    wq_server --clients 0 --listen 127.0.0.1:7000 &  socat - TCP:127.0.0.1:7000\n"
      "  The first SIGINT or SIGTERM shuts down gracefully (within 10 s); a second exits at\n"
      "  once.\n");
}

int bad_usage(const std::string& what) {
  std::fprintf(stderr, "wq_server: %s\nTry 'wq_server --help'.\n", what.c_str());
  return 2;
}

// Parses "HOST:PORT" (IPv6: "[ADDR]:PORT"). Returns an error message, empty on success.
std::string parse_endpoint(std::string_view text, tcp::endpoint& ep) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return "--listen expects HOST:PORT, e.g. 127.0.0.1:0, not '" + std::string(text) + "'";
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (ec)
    return "--listen: '" + std::string(host) +
           "' is not an IP address (e.g. 127.0.0.1, 0.0.0.0, [::1])";
  unsigned port = 0;
  const auto [end, err] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || err != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535)
    return "--listen: the port must be a number from 0 to 65535, not '" + std::string(port_text) +
           "'";
  ep = tcp::endpoint(address, static_cast<unsigned short>(port));
  return {};
}

// Returns -1 to go on, or the exit status.
int parse_options(int argc, char** argv, options& opt) {
  struct spec {
    std::string_view name;
    int* value;
    int min, max;
  };
  const spec specs[] = {{"--clients", &opt.clients, 0, 5000},
                        {"--connections", &opt.clients, 0, 5000},
                        {"--seconds", &opt.seconds, 1, 86400},
                        {"--idle-ms", &opt.idle_ms, 1, 3600000},
                        {"--threads", &opt.threads, 1, 64}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return 0;
    }
    if (arg == "--quiet") {
      opt.quiet = true;
      continue;
    }
    if (!arg.starts_with("-")) return bad_usage("unexpected argument '" + std::string(arg) + "'");
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
    if (s == std::end(specs) && name != "--listen")
      return bad_usage("unknown option '" + std::string(arg) + "'");
    if (!has_value) {
      if (i + 1 >= argc) return bad_usage("option " + std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "--listen") {
      tcp::endpoint ignored;
      if (std::string e = parse_endpoint(value, ignored); !e.empty()) return bad_usage(e);
      opt.listen = value;
      continue;
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

// Each built-in client connection takes two descriptors in this process (client and server
// side); a server alone takes one per connection. Raises the soft limit towards what is needed
// (server alone: as far as the hard limit allows); returns false if even the hard limit is too
// low for the built-in client.
bool enough_descriptors(int clients, rlim_t& limit) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;
  limit = rl.rlim_cur;
  if (clients == 0) {
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(rl.rlim_cur, 65536)
                                                 : std::min<rlim_t>(rl.rlim_max, 65536);
      (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    return true;
  }
  const rlim_t need = static_cast<rlim_t>(clients) * 2 + 64;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    limit = rl.rlim_max;
    return false;
  }
  rl.rlim_cur = need;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// Why the server stops: the first request wins. Any thread.
class stop_request {
 public:
  void request(std::string why) {
    {
      std::lock_guard lk(mu_);
      if (!why_.empty()) return;
      why_ = std::move(why);
    }
    cv_.notify_all();
  }
  std::string wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return !why_.empty(); });
    return why_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string why_;  // guarded by mu_
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (const int rc = parse_options(argc, argv, opt); rc >= 0) return rc;
  if (rlim_t limit = 0; !enough_descriptors(opt.clients, limit)) {
    return bad_usage("--clients " + std::to_string(opt.clients) + " needs about " +
                     std::to_string(opt.clients * 2 + 64) + " file descriptors; the limit is " +
                     std::to_string(limit) + " (raise it with ulimit -n)");
  }
  const bool with_clients = opt.clients > 0;
  if (with_clients && opt.seconds == 0) opt.seconds = 10;
  // With the built-in client the idle timeout must fire within the run: idle connections stop
  // after a few batches.
  if (opt.idle_ms == 0) opt.idle_ms = with_clients ? std::min(1500, opt.seconds * 500) : 1500;
  wq::set_diagnostic_handler(&count_diagnostic);

  tcp::endpoint listen_ep;
  (void)parse_endpoint(opt.listen, listen_ep);  // checked by parse_options
  const auto idle = std::chrono::milliseconds(opt.idle_ms);
  const int idle_connections = opt.clients < 2 ? 0 : std::max(1, opt.clients / 10);
  const auto connections = static_cast<std::uint64_t>(opt.clients);
  const auto idle_count = static_cast<std::uint64_t>(idle_connections);

  asio::io_context io(opt.threads);
  asio::thread_pool workers(worker_threads);
  std::vector<std::string> failures;
  const auto expect = [&failures](bool ok, const std::string& what) {
    if (!ok) failures.push_back(what);
  };
  {
    server srv(io, workers, idle);
    tcp::endpoint ep;
    try {
      ep = srv.listen(listen_ep);
    } catch (const boost::system::system_error& e) {
      std::fprintf(stderr, "wq_server: cannot listen on %s: %s\n",
                   format_endpoint(listen_ep).c_str(), e.code().message().c_str());
      return 1;
    }
    std::printf("listening on %s\n", format_endpoint(ep).c_str());
    if (with_clients) {
      std::printf("built-in client: %d connections (%d go idle) for %d s; ", opt.clients,
                  idle_connections, opt.seconds);
    } else if (opt.seconds > 0) {
      std::printf("server alone for %d s (or until SIGINT/SIGTERM); ", opt.seconds);
    } else {
      std::printf("server alone until SIGINT/SIGTERM; ");
    }
    std::printf(
        "idle timeout %d ms,\n  %d io thread%s + %u queue workers; work item %zu B, delayed item "
        "%zu B\n",
        opt.idle_ms, opt.threads, opt.threads == 1 ? "" : "s", worker_threads, sizeof(wq::work),
        sizeof(wq::delayed_work));
    std::fflush(stdout);

    const auto t0 = clock_type::now();
    auto guard = asio::make_work_guard(io);
    std::vector<std::thread> io_threads;
    for (int i = 0; i < opt.threads; ++i) io_threads.emplace_back([&io] { io.run(); });

    // Signals and the deadline, on a strand of their own: the first signal stops the server
    // gracefully, a second exits at once.
    stop_request stop;
    strand_type control = asio::make_strand(io);
    asio::signal_set signals(control, SIGINT, SIGTERM);
    asio::steady_timer deadline(control);
    std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
      if (ec) return;
      static bool second = false;
      if (second) {
        std::fprintf(stderr, "wq_server: second %s: exiting at once\n", signal_name(sig));
        std::_Exit(130);
      }
      second = true;
      stop.request(signal_name(sig));
      signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    if (!with_clients && opt.seconds > 0) {
      deadline.expires_after(std::chrono::seconds(opt.seconds));
      deadline.async_wait([&stop](const error_code& ec) {
        if (!ec) stop.request("--seconds elapsed");
      });
    }

    srv.start_accepting();
    monitor mon(srv, t0);
    if (!opt.quiet) mon.start();
    std::optional<client> cl;
    std::thread client_thread, client_waiter;
    if (with_clients) {
      tcp::endpoint target = ep;  // an unspecified address (0.0.0.0, ::) is reached on loopback
      if (target.address().is_unspecified())
        target.address(ep.address().is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                            : asio::ip::address(asio::ip::address_v4::loopback()));
      cl.emplace(target, opt.clients, idle_connections, std::chrono::seconds(opt.seconds));
      client_thread = std::thread([&cl] { cl->run(); });
      client_waiter = std::thread([&cl, &stop] {
        cl->wait_quiesced();
        stop.request("the built-in client finished");
      });
    }

    const std::string why = stop.wait();
    const bool early = with_clients && why != "the built-in client finished";
    std::printf("\nstopping: %s\n", why.c_str());
    std::fflush(stdout);
    const auto stop_t0 = clock_type::now();
    if (cl) {
      cl->stop();
      cl->wait_quiesced();
      client_waiter.join();
    }

    // Graceful shutdown: no new connection; every session's timeout is cancelled and the session
    // closed; each retires (its ordered queue destroyed); then the shared queues drain.
    srv.stop_accepting();
    for (const auto& s : srv.live_sessions()) s->shut_down();
    const auto left = srv.wait_all_retired(std::chrono::duration_cast<std::chrono::milliseconds>(
        shutdown_limit - (clock_type::now() - stop_t0)));
    if (left != 0) {
      std::printf("FAILED: %llu sessions did not close within %lld s of the stop\n",
                  static_cast<unsigned long long>(left),
                  static_cast<long long>(shutdown_limit.count()));
      std::fflush(stdout);
      std::_Exit(1);
    }
    if (client_thread.joinable()) client_thread.join();
    mon.stop();
    for (wq::workqueue* q : {&srv.flush_q, &srv.timeout_q, &srv.events_q}) {
      if (const std::error_code ec = q->drain())
        failures.push_back(q->name() + ".drain(): " + ec.message());
    }
    {
      std::promise<void> done;
      asio::post(control, [&] {
        signals.cancel();
        deadline.cancel();
        done.set_value();
      });
      done.get_future().wait();
    }
    mon.print("final");
    guard.reset();
    for (auto& t : io_threads) t.join();
    const auto now = clock_type::now();
    const double secs = std::chrono::duration<double>(now - t0).count();
    const double stop_secs = std::chrono::duration<double>(now - stop_t0).count();

    const server_counters& c = srv.c;
    const wq::queue_stats fs = srv.flush_q.stats();
    std::uint64_t nr_session_queues = 0;
    const wq::queue_stats ss = srv.session_queue_stats(nr_session_queues);
    const auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    const std::uint64_t bad = get(c.bad_malformed) + get(c.bad_too_long) + get(c.bad_range);
    std::printf("\nsummary after %.1f s (shutdown took %.2f s)\n", secs, stop_secs);
    std::printf(
        "  sessions      %llu constructed, %llu destroyed (%llu accepted, %llu accept "
        "errors)\n",
        u(get(c.sessions_constructed)), u(get(c.sessions_destroyed)), u(srv.accepted()),
        u(get(c.accept_errors)));
    std::printf(
        "  closed        %llu idle, %llu by the peer, %llu reset by the peer, %llu after a bad "
        "request, %llu at shutdown, %llu on error (%llu graceful closes cut short)\n",
        u(get(c.closed_idle)), u(get(c.closed_peer)), u(get(c.closed_reset)), u(get(c.closed_bad)),
        u(get(c.closed_shutdown)), u(get(c.closed_error)), u(get(c.closes_cut_short)));
    std::printf(
        "  requests      %llu received, %llu answered, %llu replies lost (connection reset, or "
        "closed with replies unsent), %llu lines discarded after a close\n",
        u(get(c.received)), u(get(c.replied)), u(get(c.replies_lost)), u(get(c.discarded)));
    std::printf("  bad requests  %llu (%llu malformed, %llu too long, %llu number out of range)\n",
                u(bad), u(get(c.bad_malformed)), u(get(c.bad_too_long)), u(get(c.bad_range)));
    std::printf(
        "  idle closes   %llu (timeouts: %llu fired, %llu stale, %llu while replies waited); "
        "%llu timeouts cancelled as their session retired\n",
        u(get(c.closed_idle)), u(get(c.timeouts_fired)), u(get(c.timeouts_stale)),
        u(get(c.timeouts_deferred)), u(get(c.timeouts_cancelled)));
    std::printf("  backpressure  %llu times a session stopped reading (over %zu KiB unsent)\n",
                u(get(c.read_pauses)), max_unsent / 1024);
    std::printf("  audit         %llu records run in order (%llu out of order, %llu refused)\n",
                u(get(c.audited)), u(get(c.audit_out_of_order)), u(get(c.audit_refused)));
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
        "timeout hand-offs)\n",
        u(nr_session_queues), u(ss.queued), u(ss.finished), u(get(c.audited)),
        u(get(c.close_req_runs)));
    std::printf(
        "  wq            %llu misuse reports, %llu notices; refused: %llu timeout re-arms, %llu "
        "retires, %llu queue teardowns\n",
        u(get(g_misuse)), u(get(g_notices)), u(get(c.timeout_refused)), u(get(c.retire_refused)),
        u(get(c.queue_teardown_errors)));

    // The server's own invariants.
    expect(get(c.sessions_constructed) == srv.accepted() &&
               get(c.sessions_destroyed) == get(c.sessions_constructed),
           "session objects were not all released");
    expect(get(c.closed_idle) + get(c.closed_peer) + get(c.closed_reset) + get(c.closed_bad) +
                   get(c.closed_shutdown) + get(c.closed_error) ==
               get(c.sessions_constructed),
           "the close reasons do not add up to the sessions");
    expect(get(c.replied) + get(c.replies_lost) == get(c.received),
           "a request received was neither answered nor lost with its connection");
    expect(bad == get(c.closed_bad), "bad requests != sessions closed after a bad request");
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
           "the session queues' stats() disagree with the audit records and hand-offs that ran");
    expect(get(c.timeout_refused) == 0 && get(c.retire_refused) == 0 &&
               get(c.queue_teardown_errors) == 0,
           "a timeout, retire or queue destroy was refused");
    expect(get(g_misuse) == 0, "wq reported misuse");

    if (cl) {
      std::printf(
          "  client        %llu connections, %llu requests sent, %llu answered in order, %llu "
          "bad replies; %llu idle connections closed by the server, %llu at shutdown\n",
          u(cl->connected), u(cl->sent), u(cl->acked), u(cl->bad_replies), u(cl->idle_closed),
          u(cl->closed_at_shutdown));
      // The built-in client checks the protocol from the outside: every reply, in order.
      expect(
          cl->connected == connections && cl->connect_failed == 0 && srv.accepted() == connections,
          "not every client connection was established and accepted");
      expect(cl->sent == cl->acked && cl->idle_in_flight == 0 && cl->lost_in_flight == 0 &&
                 cl->closed_early == 0 && cl->bad_replies == 0,
             "the client did not get every reply, in order, before its connection closed");
      expect(get(c.received) == cl->sent && get(c.replies_lost) == 0 && bad == 0,
             "the server received other requests than the client sent");
      if (!early) {
        expect(get(c.closed_idle) == idle_count && cl->idle_closed == idle_count &&
                   cl->idle_not_timed_out == 0,
               "idle connections were not all closed by their idle timeout");
        expect(get(c.closed_shutdown) == connections - idle_count &&
                   cl->closed_at_shutdown == connections - idle_count,
               "active sessions were not all closed by the shutdown");
      }
    }
  }
  workers.join();
  if (!failures.empty()) {
    for (const auto& f : failures) std::printf("FAILED: %s\n", f.c_str());
    return 1;
  }
  std::printf(
      "OK: every request received was answered or its connection closed, every flush accounted "
      "for, every session released\n");
  return 0;
}
