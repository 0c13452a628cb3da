// SPDX-License-Identifier: BSL-1.0
// Sample 06: delayed callbacks from an Asio service: per-request deadlines and retries with
// exponential backoff, scheduled with wq on the application's own io_context.
//
// A UDP server on 127.0.0.1 loses datagrams on purpose (the first attempt of every fourth
// request, and the second attempt of every sixteenth); clients send their requests and wait
// for each reply or its deadline, whichever comes first:
//
//   co_await (socket.async_receive_from(..., use_awaitable) ||
//             wq::post_delayed(q, deadline, use_awaitable));
//
// A reply cancels the deadline (per-operation cancellation: nothing fires later and nothing is
// left armed); a missed deadline schedules the retry after a backoff that doubles each time
// (`co_await wq::post_delayed(q, backoff, use_awaitable)`). The queue runs on the io_context
// (`wq::workqueue q{io, ...}`) and what it has armed is outstanding work there, as a timer's
// wait would be: io.run() needs no work guard and returns exactly when the last reply has
// arrived and the server has stopped, and the sample checks that nothing is left behind.
//
// Usage: 06_asio_service [--clients N] [--requests N]   (defaults: 8 clients, 50 requests each)
// Prints a summary and "OK: ..." (exit 0), or what went wrong (exit 1).
#include <wq/wq.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto deadline = 50ms;      // per attempt
constexpr auto first_backoff = 5ms;  // doubles after each missed deadline
constexpr int max_attempts = 6;

struct totals {
  std::uint64_t sent = 0, answered = 0, deadlines_missed = 0, deadlines_cancelled = 0, retries = 0,
                failed = 0, dropped_by_server = 0;
  std::chrono::milliseconds backoff_total{0};
};

// Whether the server loses this attempt of request `n` (deterministic).
bool lose(std::uint64_t n, int attempt) {
  return (attempt == 1 && n % 4 == 3) || (attempt == 2 && n % 16 == 15);
}

// Answers "REQ <n> <attempt>" with "ACK <n>", losing some; stops after `clients` "BYE"s.
asio::awaitable<void> server(udp::socket socket, int clients, totals& t) {
  std::array<char, 64> buf{};
  udp::endpoint from;
  while (clients > 0) {
    const std::size_t len =
        co_await socket.async_receive_from(asio::buffer(buf), from, asio::use_awaitable);
    const std::string_view msg(buf.data(), len);
    if (msg == "BYE") {
      --clients;
      continue;
    }
    unsigned long long n = 0;
    int attempt = 0;
    if (std::sscanf(std::string(msg).c_str(), "REQ %llu %d", &n, &attempt) != 2) continue;
    if (lose(n, attempt)) {
      ++t.dropped_by_server;
      continue;
    }
    const std::string reply = "ACK " + std::to_string(n);
    co_await socket.async_send_to(asio::buffer(reply), from, asio::use_awaitable);
  }
}

// Sends `count` requests one after another, each with deadlines and retries.
asio::awaitable<void> client(wq::workqueue& q, udp::endpoint server_ep, std::uint64_t first,
                             std::uint64_t count, totals& t) {
  udp::socket socket(co_await asio::this_coro::executor, udp::endpoint(udp::v4(), 0));
  std::array<char, 64> buf{};
  udp::endpoint from;
  for (std::uint64_t n = first; n < first + count; ++n) {
    auto backoff = std::chrono::milliseconds(first_backoff);
    bool answered = false;
    for (int attempt = 1; attempt <= max_attempts && !answered; ++attempt) {
      const std::string req = "REQ " + std::to_string(n) + " " + std::to_string(attempt);
      co_await socket.async_send_to(asio::buffer(req), server_ep, asio::use_awaitable);
      ++t.sent;
      if (attempt > 1) ++t.retries;
      // Wait for this request's reply or the attempt's deadline, whichever comes first; the
      // other operation is cancelled (a late reply to an earlier request is skipped).
      for (;;) {
        auto r =
            co_await (socket.async_receive_from(asio::buffer(buf), from, asio::use_awaitable) ||
                      wq::post_delayed(q, deadline, asio::use_awaitable));
        if (r.index() == 1) {
          ++t.deadlines_missed;
          break;
        }
        ++t.deadlines_cancelled;
        if (std::string_view(buf.data(), std::get<0>(r)) == "ACK " + std::to_string(n)) {
          answered = true;
          break;
        }
      }
      if (!answered) {
        co_await wq::post_delayed(q, backoff, asio::use_awaitable);  // then retry
        t.backoff_total += backoff;
        backoff *= 2;
      }
    }
    if (answered) {
      ++t.answered;
    } else {
      ++t.failed;
    }
  }
  co_await socket.async_send_to(asio::buffer(std::string_view("BYE")), server_ep,
                                asio::use_awaitable);
}

bool parse(int argc, char** argv, int& clients, std::uint64_t& requests) {
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--clients") == 0 && has_value) {
      clients = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--requests") == 0 && has_value) {
      requests = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--clients N] [--requests N]\n", argv[0]);
      return false;
    }
  }
  return clients > 0 && requests > 0;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 8;
  std::uint64_t requests = 50;
  if (!parse(argc, argv, clients, requests)) return 2;

  asio::io_context io;
  wq::workqueue q{io, "deadlines"};  // runs deadline and backoff completions on io
  totals t;
  udp::socket server_socket(io, udp::endpoint(asio::ip::address_v4::loopback(), 0));
  const udp::endpoint server_ep = server_socket.local_endpoint();
  asio::co_spawn(io, server(std::move(server_socket), clients, t), asio::detached);
  for (int c = 0; c < clients; ++c) {
    asio::co_spawn(io, client(q, server_ep, static_cast<std::uint64_t>(c) * requests, requests, t),
                   asio::detached);
  }
  const auto start = std::chrono::steady_clock::now();
  io.run();  // no work guard: returns when every request is answered and the server stopped
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);

  const wq::queue_stats s = q.stats();
  const std::uint64_t total = static_cast<std::uint64_t>(clients) * requests;
  std::printf(
      "%llu requests in %lld ms: %llu datagrams sent, %llu lost by the server, "
      "%llu deadlines missed, %llu cancelled by replies, %llu retries after %lld ms of "
      "backoff in all\n",
      static_cast<unsigned long long>(total), static_cast<long long>(took.count()),
      static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.dropped_by_server),
      static_cast<unsigned long long>(t.deadlines_missed),
      static_cast<unsigned long long>(t.deadlines_cancelled),
      static_cast<unsigned long long>(t.retries), static_cast<long long>(t.backoff_total.count()));
  std::printf(
      "queue '%s': %llu deadlines and backoffs armed, %llu cancelled, %llu armed now, "
      "%llu in flight now\n",
      q.name().c_str(), static_cast<unsigned long long>(s.queued),
      static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.armed),
      static_cast<unsigned long long>(s.in_flight));
  bool ok = true;
  auto expect = [&ok](bool cond, const char* what) {
    if (!cond) {
      std::printf("FAILED: %s\n", what);
      ok = false;
    }
  };
  expect(t.answered == total && t.failed == 0, "every request was answered");
  // A reply slower than its deadline also costs a retry (its late ACK is then skipped).
  expect(t.deadlines_missed >= t.dropped_by_server, "a deadline was missed for each lost datagram");
  expect(t.retries == t.deadlines_missed, "each missed deadline was retried once");
  expect(s.cancelled == t.deadlines_cancelled, "each reply cancelled its deadline");
  expect(s.armed == 0 && s.in_flight == 0, "io.run() returned with nothing left armed or queued");
  if (!ok) return 1;
  std::printf("OK: every request answered; io.run() returned when the work was done\n");
  return 0;
}
