// SPDX-License-Identifier: BSL-1.0
// Tests for wq/observer.hpp: the observer hooks (on_queued with the caller's `location` and the
// delayed flag, on_activated for items leaving the inactive list (rule 37), on_started and
// on_finished around the function), set_observer(nullptr), `work_name`, and workqueue::dump(),
// the human-readable picture of what a queue is running, holding and has armed.
//
// The recording observer is thread-safe (a mutex; its hooks never call into wq). Worker threads
// never call Catch2 macros; the test thread checks the recorded events after a drain.
#include <wq/observer.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/kernel.hpp>
#include <wq/workqueue.hpp>

#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

/// Items with names in a named namespace, so their exact spelling can be checked.
namespace wq_observer_test {

struct session {
  wq::work flush;
  wq::work close;
  std::atomic<int> runs{0};
  static void run(session* self, wq::id<&session::flush>) noexcept { self->runs.fetch_add(1); }
  static void run(session* self, wq::id<&session::close>) noexcept { self->runs.fetch_add(1); }
};

void c_function(wq::work*) noexcept {}

}  // namespace wq_observer_test

namespace {

using namespace std::chrono_literals;
using wq::queue_flags;
using wq::queue_status;
using wq_test::latch;
using wq_test::must_happen;

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

enum class kind { queued, activated, started, ran, finished };

struct event {
  kind what;
  const void* item;  // the wq::work's address
  std::string queue;
  bool delayed = false;  // on_queued
  wq::location where{};  // on_queued
  std::string name;      // on_finished
  int seq = 0;           // position in the recorder's history
};

/// Records every event in one history, in the order the hooks were called.
class recorder final : public wq::observer {
 public:
  void on_queued(std::string_view queue, const wq::work& item, bool delayed,
                 const wq::location& where) noexcept override {
    add({kind::queued, &item, std::string(queue), delayed, where, {}, 0});
  }
  void on_activated(std::string_view queue, const wq::work& item) noexcept override {
    add({kind::activated, &item, std::string(queue), false, {}, {}, 0});
  }
  void on_started(std::string_view queue, const wq::work& item) noexcept override {
    add({kind::started, &item, std::string(queue), false, {}, {}, 0});
  }
  void on_finished(std::string_view queue, const void* item, const char* name) noexcept override {
    add({kind::finished, item, std::string(queue), false, {}, name, 0});
  }
  /// Called by work functions, so the history shows where the function ran.
  void note_run(const wq::work& item) noexcept { add({kind::ran, &item, {}, false, {}, {}, 0}); }

  [[nodiscard]] std::vector<event> history() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  /// The events of one item, in order.
  [[nodiscard]] std::vector<event> of(const wq::work& item) const {
    std::vector<event> out;
    for (const event& e : history())
      if (e.item == &item) out.push_back(e);
    return out;
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lk(mu_);
    return events_.size();
  }
  [[nodiscard]] int count(kind k) const {
    const auto h = history();
    return static_cast<int>(
        std::count_if(h.begin(), h.end(), [k](const event& e) { return e.what == k; }));
  }

 private:
  void add(event e) noexcept {
    std::lock_guard lk(mu_);
    e.seq = static_cast<int>(events_.size());
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<event> events_;
};

std::vector<kind> kinds(const std::vector<event>& events) {
  std::vector<kind> out;
  for (const event& e : events) out.push_back(e.what);
  return out;
}

/// A raw-pointer item that notes its run in a recorder.
struct noted_item {
  wq::work w;
  recorder* rec = nullptr;
  static void run(noted_item* self, wq::id<&noted_item::w>) noexcept {
    self->rec->note_run(self->w);
  }
};

/// A C-style item.
struct c_item {
  std::atomic<int> runs{0};
  wq::work w{wq::fn_ops<&c_item::fn>};
  static void fn(wq::work* item) noexcept { wq::container_of<&c_item::w>(item)->runs.fetch_add(1); }
};

/// A delayed item in the anonymous namespace.
struct foo {
  wq::work w;
  static void run(foo*, wq::id<&foo::w>) noexcept {}
};

void anon_function(wq::work*) noexcept {}

// ---- on_queued -------------------------------------------------------------------------------

TEST_CASE(
    "observer: on_queued reports each successful queueing once, with the item, the "
    "delayed flag and the caller's location",
    "[observer]") {
  recorder rec;
  c_item c;
  wq_test::fn_delayed_item armed{[](wq_test::fn_delayed_item&) {}};
  wq_test::fn_delayed_item now{[](wq_test::fn_delayed_item&) {}};
  noted_item typed;
  typed.rec = &rec;
  wq::workqueue q{"observed", {.threads = 2}};
  q.set_observer(&rec);
  q.pause();

  using delayed = wq_test::fn_delayed_item;
  // Each call and the __LINE__ that names it share one line.
  // clang-format off
  const auto r1 = q.enqueue<&noted_item::w>(&typed); const unsigned line_typed = __LINE__;
  const auto r2 = q.enqueue<&noted_item::w>(&typed);  // coalesced (rule 1): no event
  const bool r3 = wq::queue_work(q, c.w); const unsigned line_c = __LINE__;
  const auto r4 = q.enqueue_delayed<&delayed::d>(&armed, 10s); const unsigned line_armed = __LINE__;
  const auto r5 = q.enqueue_delayed<&delayed::d>(&now, 0ms); const unsigned line_now = __LINE__;
  const bool r6 = wq::queue_delayed_work(q, armed.d, 1s);  // already armed: no event
  // clang-format on
  CHECK(r1.status == queue_status::queued);
  CHECK(r2.status == queue_status::already_pending);
  CHECK(r3);
  CHECK(r4.status == queue_status::queued);
  CHECK(r5.status == queue_status::queued);
  CHECK_FALSE(r6);

  const auto h = rec.history();
  REQUIRE(h.size() == 4);
  for (const event& e : h) {
    CHECK(e.what == kind::queued);
    CHECK(e.queue == "observed");
    CHECK(ends_with(e.where.file, "observer_test.cpp"));
    CHECK(std::string_view(e.where.function).size() > 0);
  }
  CHECK(h[0].item == &typed.w);
  CHECK_FALSE(h[0].delayed);
  CHECK(h[0].where.line == line_typed);
  CHECK(h[1].item == &c.w);
  CHECK_FALSE(h[1].delayed);
  CHECK(h[1].where.line == line_c);
  CHECK(h[2].item == static_cast<const wq::work*>(&armed.d));
  CHECK(h[2].delayed);  // armed
  CHECK(h[2].where.line == line_armed);
  CHECK(h[3].item == static_cast<const wq::work*>(&now.d));
  CHECK_FALSE(h[3].delayed);  // a zero delay queues at once (rule 19)
  CHECK(h[3].where.line == line_now);

  CHECK(wq::cancel_delayed_work(armed.d));
  q.resume();
  REQUIRE(q.drain() == std::error_code{});
  CHECK(rec.count(kind::queued) == 4);
  CHECK(c.runs.load() == 1);
}

TEST_CASE(
    "observer: a delayed item is reported queued when armed, not again when its timer "
    "fires",
    "[observer][delayed]") {
  recorder rec;
  latch ran{1};
  wq_test::fn_delayed_item d{[&](wq_test::fn_delayed_item&) { ran.count_down(); }};
  wq::workqueue q{"observed-delayed", {.threads = 1}};
  q.set_observer(&rec);
  REQUIRE(q.enqueue_delayed<&wq_test::fn_delayed_item::d>(&d, wq::jiffies{1}));
  REQUIRE(ran.wait_for(must_happen));
  REQUIRE(q.drain() == std::error_code{});
  const auto ev = rec.of(d.d);
  CHECK(kinds(ev) == std::vector<kind>{kind::queued, kind::started, kind::finished});
  REQUIRE_FALSE(ev.empty());
  CHECK(ev[0].delayed);
}

TEST_CASE("observer: mod_delayed_work of an idle item is reported queued (armed) once",
          "[observer][delayed][rule20]") {
  recorder rec;
  wq_test::fn_delayed_item d{[](wq_test::fn_delayed_item&) {}};
  wq::workqueue q{"observed-mod", {.threads = 1}};
  q.set_observer(&rec);
  REQUIRE(q.enqueue_delayed<&wq_test::fn_delayed_item::d>(&d, 10s));  // binds the item's ops
  REQUIRE(wq::cancel_delayed_work(d.d));
  const std::size_t before = rec.size();
  CHECK_FALSE(wq::mod_delayed_work(q, d.d, 10s));  // idle: now armed
  const auto h = rec.history();
  REQUIRE(h.size() == before + 1);
  CHECK(h.back().what == kind::queued);
  CHECK(h.back().item == static_cast<const wq::work*>(&d.d));
  CHECK(h.back().delayed);
  CHECK(wq::cancel_delayed_work(d.d));
}

// ---- started / finished ----------------------------------------------------------------------

TEST_CASE(
    "observer: each run is reported queued, then started before the function, then "
    "finished after it, on the right item",
    "[observer]") {
  recorder rec;
  constexpr int n = 24;
  std::vector<std::unique_ptr<noted_item>> items;
  for (int i = 0; i < n; ++i) {
    items.push_back(std::make_unique<noted_item>());
    items.back()->rec = &rec;
  }
  wq::workqueue q{"observed-runs", {.threads = 2}};
  q.set_observer(&rec);
  for (auto& it : items) REQUIRE(q.enqueue<&noted_item::w>(it.get()));
  REQUIRE(q.drain() == std::error_code{});

  CHECK(rec.size() == static_cast<std::size_t>(4 * n));
  for (auto& it : items) {
    const auto ev = rec.of(it->w);
    REQUIRE(kinds(ev) == std::vector<kind>{kind::queued, kind::started, kind::ran, kind::finished});
    CHECK(ev[0].seq < ev[1].seq);
    CHECK(ev[1].seq < ev[2].seq);
    CHECK(ev[2].seq < ev[3].seq);
    CHECK(ev[1].queue == "observed-runs");
    CHECK(ev[3].queue == "observed-runs");
    CHECK(ev[3].name == wq::work_name(it->w));
  }
}

TEST_CASE(
    "observer: an item beyond max_active is reported activated when it leaves the inactive "
    "list (rule 37)",
    "[observer][rule37]") {
  recorder rec;
  latch started{1};
  latch release{1};
  wq_test::fn_item first{[&](wq_test::fn_item&) {
    started.count_down();
    (void)release.wait_for(must_happen);
  }};
  wq_test::fn_item second{[](wq_test::fn_item&) {}};
  wq::workqueue q{"observed-inactive", {.max_active = 1, .threads = 2}};
  q.set_observer(&rec);
  REQUIRE(wq_test::enqueue(q, first) == queue_status::queued);
  REQUIRE(started.wait_for(must_happen));
  REQUIRE(wq_test::enqueue(q, second) == queue_status::queued);  // inactive: max_active is 1
  CHECK(kinds(rec.of(second.w)) == std::vector<kind>{kind::queued});
  release.count_down();
  REQUIRE(q.drain() == std::error_code{});

  CHECK(kinds(rec.of(first.w)) == std::vector<kind>{kind::queued, kind::started, kind::finished});
  const auto ev = rec.of(second.w);
  REQUIRE(kinds(ev) ==
          std::vector<kind>{kind::queued, kind::activated, kind::started, kind::finished});
  CHECK(ev[1].queue == "observed-inactive");
  // Activated when the first one finished: its worker calls on_finished, then retakes the
  // queue's lock and activates the next inactive item.
  const auto first_ev = rec.of(first.w);
  CHECK(first_ev[2].seq < ev[1].seq);
}

TEST_CASE("observer: after set_observer(nullptr) the observer gets no more calls", "[observer]") {
  recorder rec;
  wq_test::fn_item a{[](wq_test::fn_item&) {}};
  wq_test::fn_item b{[](wq_test::fn_item&) {}};
  latch fired{1};
  wq_test::fn_delayed_item d{[&](wq_test::fn_delayed_item&) { fired.count_down(); }};
  wq::workqueue q{"unobserved", {.threads = 2}};
  q.set_observer(&rec);
  REQUIRE(wq_test::enqueue(q, a) == queue_status::queued);
  REQUIRE(q.drain() == std::error_code{});
  REQUIRE(rec.size() == 3);

  q.set_observer(nullptr);
  REQUIRE(wq_test::enqueue(q, a) == queue_status::queued);
  REQUIRE(wq_test::enqueue(q, b) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(q, d, wq::jiffies{1}) == queue_status::queued);
  REQUIRE(fired.wait_for(must_happen));  // armed, fired, queued and ran unobserved
  REQUIRE(q.drain() == std::error_code{});
  CHECK(rec.size() == 3);

  // Installing it again resumes the events.
  q.set_observer(&rec);
  REQUIRE(wq_test::enqueue(q, b) == queue_status::queued);
  REQUIRE(q.drain() == std::error_code{});
  CHECK(rec.size() == 6);
}

// ---- work_name -------------------------------------------------------------------------------

TEST_CASE(
    "observer: work_name is namespace::class::member for typed items, the function for "
    "C-style ones, unbound otherwise",
    "[observer][work_name]") {
  const wq::work never_queued;
  CHECK(std::string(wq::work_name(never_queued)) == "unbound");

  const wq::work c{wq::fn_ops<&wq_observer_test::c_function>};
  CHECK(std::string(wq::work_name(c)) == "wq_observer_test::c_function");
  const wq::work anon{wq::fn_ops<&anon_function>};
  CHECK(ends_with(wq::work_name(anon), "::anon_function"));

  wq_observer_test::session s;
  foo f;
  CHECK(std::string(wq::work_name(s.flush)) == "unbound");  // bound when first queued
  wq::workqueue q{"names", {.threads = 1}};
  REQUIRE(q.enqueue<&wq_observer_test::session::flush>(&s));
  REQUIRE(q.enqueue<&wq_observer_test::session::close>(&s));
  REQUIRE(q.enqueue<&foo::w>(&f));
  REQUIRE(q.drain() == std::error_code{});
  CHECK(std::string(wq::work_name(s.flush)) == "wq_observer_test::session::flush");
  CHECK(std::string(wq::work_name(s.close)) == "wq_observer_test::session::close");
  // "{anonymous}::foo::w" with g++, "(anonymous namespace)::foo::w" with clang.
  CHECK(ends_with(wq::work_name(f.w), "::foo::w"));
  CHECK(s.runs.load() == 2);
}

// ---- dump ------------------------------------------------------------------------------------

/// Returns the item lines of a dump of kind `what` ("waiting", "armed", ...): those that start
/// with two spaces and `what` (the first line, the queue's summary, never does).
std::vector<std::string> lines_with(const std::string& text, std::string_view what) {
  const std::string prefix = "  " + std::string(what) + " ";
  std::vector<std::string> out;
  std::size_t b = 0;
  while (b < text.size()) {
    std::size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    const std::string line = text.substr(b, e - b);
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
    b = e + 1;
  }
  return out;
}

TEST_CASE(
    "observer: dump names the waiting items in order and the armed ones with the time "
    "left",
    "[observer][dump]") {
  wq_observer_test::session s;
  wq_test::fn_delayed_item d{[](wq_test::fn_delayed_item&) {}};
  wq::workqueue q{"dumped", {.threads = 2}};
  q.pause();
  REQUIRE(q.enqueue<&wq_observer_test::session::flush>(&s));
  REQUIRE(q.enqueue<&wq_observer_test::session::close>(&s));
  REQUIRE(wq_test::enqueue_delayed(q, d, 10s) == queue_status::queued);
  const std::string text = q.dump();
  INFO(text);
  CHECK(text.find("'dumped'") != std::string::npos);
  CHECK(text.find("paused") != std::string::npos);

  const auto waiting = lines_with(text, "waiting");
  REQUIRE(waiting.size() == 2);
  CHECK(waiting[0].find("wq_observer_test::session::flush") != std::string::npos);
  CHECK(waiting[1].find("wq_observer_test::session::close") != std::string::npos);

  const auto armed = lines_with(text, "armed");
  REQUIRE(armed.size() == 1);
  CHECK(armed[0].find("wq_test::fn_delayed_item::d") != std::string::npos);
  const std::size_t at = armed[0].find("due in ");
  REQUIRE(at != std::string::npos);
  const long ms = std::strtol(armed[0].c_str() + at + 7, nullptr, 10);
  CHECK(ms > 0);
  CHECK(ms <= 10000);

  CHECK(wq::cancel_delayed_work(d.d));
  q.resume();
  REQUIRE(q.drain() == std::error_code{});
  CHECK(s.runs.load() == 2);
  CHECK(lines_with(q.dump(), "waiting").empty());
}

TEST_CASE(
    "observer: dump shows a running item, the inactive ones behind it, and at most "
    "limit of each",
    "[observer][dump][rule37]") {
  latch started{1};
  latch release{1};
  wq_test::fn_item blocker{[&](wq_test::fn_item&) {
    started.count_down();
    (void)release.wait_for(must_happen);
  }};
  std::vector<std::unique_ptr<wq_observer_test::session>> behind;
  for (int i = 0; i < 5; ++i) behind.push_back(std::make_unique<wq_observer_test::session>());
  wq::workqueue q{"dumped-running", {.max_active = 1, .threads = 2}};
  REQUIRE(wq_test::enqueue(q, blocker) == queue_status::queued);
  REQUIRE(started.wait_for(must_happen));
  for (auto& s : behind) REQUIRE(q.enqueue<&wq_observer_test::session::flush>(s.get()));

  const std::string text = q.dump(2);
  INFO(text);
  release.count_down();  // before any REQUIRE can leave the test with the item blocked
  const auto running = lines_with(text, "running");
  REQUIRE(running.size() == 1);
  CHECK(running[0].find("wq_test::fn_item::w") != std::string::npos);
  const auto inactive = lines_with(text, "inactive");
  REQUIRE(inactive.size() == 3);  // two named, then "... 3 more"
  CHECK(inactive[0].find("session::flush") != std::string::npos);
  CHECK(inactive[1].find("session::flush") != std::string::npos);
  CHECK(inactive[2].find("3 more") != std::string::npos);
  REQUIRE(q.drain() == std::error_code{});
  CHECK(lines_with(q.dump(), "running").empty());
  CHECK(q.destroy() == std::error_code{});
  CHECK(q.dump().find("destroyed") != std::string::npos);
}

}  // namespace
