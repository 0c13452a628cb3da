// SPDX-License-Identifier: BSL-1.0
// Tests for wq/queue_status.hpp: the names of the statuses, enqueue_result's conversion to bool
// (the kernel's return value: true iff queued), and that real queueing calls produce each
// reachable status with the pointer handed back exactly when the item was not queued.
#include <wq/queue_status.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <type_traits>

#include <boost/asio/io_context.hpp>

#include <wq/kernel.hpp>
#include <wq/workqueue.hpp>

#include "support/items.hpp"

namespace {

// ---- names -----------------------------------------------------------------------------------

// to_string is constexpr: check the names at compile time too.
constexpr bool same(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}
static_assert(same(wq::to_string(wq::queue_status::queued), "queued"));
static_assert(same(wq::to_string(wq::queue_status::already_pending), "already_pending"));
static_assert(same(wq::to_string(wq::queue_status::disabled), "disabled"));
static_assert(same(wq::to_string(wq::queue_status::rejected), "rejected"));
static_assert(same(wq::to_string(wq::queue_status::unbound), "unbound"));
static_assert(same(wq::to_string(wq::queue_status::null_pointer), "null_pointer"));
static_assert(noexcept(wq::to_string(wq::queue_status::queued)));

TEST_CASE("queue_status: to_string names every status", "[queue_status]") {
  CHECK(std::string(wq::to_string(wq::queue_status::queued)) == "queued");
  CHECK(std::string(wq::to_string(wq::queue_status::already_pending)) == "already_pending");
  CHECK(std::string(wq::to_string(wq::queue_status::disabled)) == "disabled");
  CHECK(std::string(wq::to_string(wq::queue_status::rejected)) == "rejected");
  CHECK(std::string(wq::to_string(wq::queue_status::unbound)) == "unbound");
  // A value outside the enumeration (e.g. from a newer library) still gets a name.
  CHECK(std::string(wq::to_string(static_cast<wq::queue_status>(99))) == "unknown");
}

// ---- enqueue_result --------------------------------------------------------------------------

static_assert(!std::is_convertible_v<wq::enqueue_result<int*>, bool>,
              "enqueue_result converts to bool only explicitly (contextually)");
static_assert(std::is_constructible_v<bool, wq::enqueue_result<int*>>);

TEST_CASE("queue_status: enqueue_result is true iff queued (rule 14)",
          "[queue_status][enqueue_result][rule14]") {
  int object = 0;
  const wq::queue_status all[] = {wq::queue_status::queued,   wq::queue_status::already_pending,
                                  wq::queue_status::disabled, wq::queue_status::rejected,
                                  wq::queue_status::unbound,  wq::queue_status::null_pointer};
  for (const auto st : all) {
    INFO(wq::to_string(st));
    const wq::enqueue_result<int*> r{st, st == wq::queue_status::queued ? nullptr : &object};
    const bool expected = st == wq::queue_status::queued;
    CHECK(r.queued() == expected);
    CHECK(static_cast<bool>(r) == expected);
    if (r) {
      CHECK(r.pointer == nullptr);
    } else {
      CHECK(r.pointer == &object);
    }
  }

  // Move-only pointers are carried by value.
  wq::enqueue_result<std::unique_ptr<int>> owned{wq::queue_status::rejected,
                                                 std::make_unique<int>(5)};
  CHECK_FALSE(owned);
  REQUIRE(owned.pointer != nullptr);
  CHECK(*owned.pointer == 5);
}

// ---- statuses produced by real calls ---------------------------------------------------------

struct item {
  wq::work w;
  int runs = 0;
  static void run(item* self, wq::id<&item::w>) noexcept { ++self->runs; }
};

TEST_CASE(
    "queue_status: queueing calls report queued, already_pending, rejected and unbound "
    "(rules 1, 14)",
    "[queue_status][rule1][rule14]") {
  boost::asio::io_context io;
  item it;
  wq::workqueue q{io.get_executor(), "status"};
  wq_test::drive_on_exit drive{io};

  auto first = q.enqueue<&item::w>(&it);
  CHECK(first.status == wq::queue_status::queued);
  CHECK(first);
  CHECK(first.pointer == nullptr);

  auto second = q.enqueue<&item::w>(&it);
  CHECK(second.status == wq::queue_status::already_pending);
  CHECK_FALSE(second);
  CHECK(second.pointer == &it);
  CHECK(q.queue(it.w) == wq::queue_status::already_pending);

  wq_test::run_ready(io);
  CHECK(it.runs == 1);

  wq::workqueue dead{"status-dead"};
  dead.destroy();
  auto refused = dead.enqueue<&item::w>(&it);
  CHECK(refused.status == wq::queue_status::rejected);
  CHECK_FALSE(refused);
  CHECK(refused.pointer == &it);
  CHECK(dead.queue(it.w) == wq::queue_status::rejected);
  CHECK_FALSE(wq::queue_work(dead, it.w));

  wq_test::warning_catcher warnings;
  wq::work unbound;
  CHECK(q.queue(unbound) == wq::queue_status::unbound);
  CHECK(warnings.contains(wq::errc::no_work_function));
}

}  // namespace
