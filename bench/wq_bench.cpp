// SPDX-License-Identifier: BSL-1.0
// wq_bench: wq against what users would otherwise pick, in the same process and run.
// Benchmarks are named <workload>/<system>; bench/run.sh turns the JSON into ratios against the
// baseline of each workload. Every wq benchmark reports `allocs_per_op` from a counting global
// operator new (all threads), so "zero allocation" is measured, not assumed.
//
//   burst      1 000 000 pre-allocated items queued from one thread to 2 workers, timed until
//              all have run: wq, asio_post (a lambda per item to asio::thread_pool(2)), tbb
//              (task_arena(2).enqueue), libuv (uv_queue_work, pool size 2), stealing_pool
//              (libthread-pool-dev), naive (mutex + condition_variable pool of 2)
//   burst_named  the same burst on a named queue (the shared normal pool, 2 workers), against
//              burst/wq (a queue owning 2 threads) in the same run
//   create     create + destroy a named queue vs create + destroy a strand of an io_context
//   pingpong   queue from one thread, the item signals back: wq vs asio_post
//   dedup      queue_work on an item that is already pending (rule 1)
//   debounce   move a pending deadline later, 1 000 000 times: mod_delayed_work vs
//              steady_timer::expires_after + async_wait
//   armcancel  arm then cancel 100 000 delayed items: wq vs steady_timer
//   lateness   p50/p99 lateness with 100 000 armed items: wq vs steady_timer
//   rss        heap bytes per armed delayed item, the item included: wq vs a steady_timer with
//              a pending wait
#include <wq/wq.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <oneapi/tbb/task_arena.h>
#include <uv.h>
#include <thread_pool/thread_pool.hpp>

#include <malloc.h>

// ---- allocation counting ----------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

constexpr int burst_items = 1'000'000;
constexpr int timer_items = 100'000;

/// Counts down from n; the thread that reaches zero wakes the waiter.
class countdown {
 public:
  void reset(int n) noexcept {
    left_.store(n, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
  }
  void hit() noexcept {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      done_.store(1, std::memory_order_release);
      done_.notify_one();
    }
  }
  void wait() noexcept { done_.wait(0, std::memory_order_acquire); }

 private:
  std::atomic<int> left_{0};
  std::atomic<int> done_{0};
};

void report_allocs(benchmark::State& state, std::uint64_t before, double ops) {
  const auto n = static_cast<double>(g_allocs.load(std::memory_order_relaxed) - before);
  state.counters["allocs_per_op"] = benchmark::Counter(n / ops);
}

// ---- burst ------------------------------------------------------------------------------------

struct burst_item {
  wq::work w{wq::fn_ops<&burst_item::fn>};
  countdown* done = nullptr;
  static void fn(wq::work* item) noexcept { wq::container_of<&burst_item::w>(item)->done->hit(); }
};

// Times bursts on `q` (a queue whose workers are 2 threads).
void run_burst(benchmark::State& state, wq::workqueue& q) {
  countdown done;
  std::vector<burst_item> items(burst_items);
  for (auto& it : items) it.done = &done;
  // Warm-up, untimed and uncounted; the counter is about steady state. Worker handlers are
  // posted from this thread and freed on the pool's threads, whose caches of recycled handler
  // memory (32 blocks each) fill before blocks flow back through the shared pool: 256 round
  // trips (each one posts a worker to an idle queue) get there; then one burst.
  for (int i = 0; i < 256; ++i) {
    done.reset(1);
    (void)wq::queue_work(q, items[0].w);
    done.wait();
  }
  done.reset(burst_items);
  for (auto& it : items) (void)wq::queue_work(q, it.w);
  done.wait();
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    done.reset(burst_items);
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for (auto& it : items) (void)wq::queue_work(q, it.w);
    done.wait();
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
  }
  state.SetItemsProcessed(state.iterations() * burst_items);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(allocs) / (static_cast<double>(state.iterations()) * burst_items));
}

// A queue owning a pool of 2 threads (the baseline every burst system gets: 2 workers).
void burst_wq(benchmark::State& state) {
  wq::workqueue q{"burst", {.threads = 2}};
  run_burst(state, q);
}

// A named queue on the shared normal pool, held to exactly 2 workers like the others
// (concurrency and max_threads 2: no spare worker starts if one is descheduled past the
// threshold on this 3-threads-on-2-cores run). The pool also has its manager thread, which
// looks at the pool (every 1-5 ms) while items wait for a worker; its cost is in the figure.
void burst_wq_named(benchmark::State& state) {
  const wq::pool_options old =
      wq::set_pool_options(wq::pool_kind::normal, {.concurrency = 2, .max_threads = 2});
  {
    wq::workqueue q{"burst-named"};
    run_burst(state, q);
  }
  (void)wq::set_pool_options(wq::pool_kind::normal, old);
}

// ---- create: a queue per session costs what a strand costs -----------------------------------

// Creates and destroys a named queue (what a per-session queue costs): no thread starts.
void create_wq_named(benchmark::State& state) {
  for (int i = 0; i < 1000; ++i) wq::workqueue warm{"session"};  // the registry's free list
  const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    wq::workqueue q{"session"};
    benchmark::DoNotOptimize(&q);
  }
  report_allocs(state, before, static_cast<double>(state.iterations()));
}

// Creates and destroys a strand over an io_context: Asio's per-session serialiser.
void create_strand(benchmark::State& state) {
  asio::io_context io;
  for (int i = 0; i < 1000; ++i) (void)asio::make_strand(io);
  const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    auto s = asio::make_strand(io);
    benchmark::DoNotOptimize(&s);
  }
  report_allocs(state, before, static_cast<double>(state.iterations()));
}

void burst_asio_post(benchmark::State& state) {
  asio::thread_pool pool(2);
  countdown done;
  for (auto _ : state) {
    done.reset(burst_items);
    for (int i = 0; i < burst_items; ++i) asio::post(pool, [&done] { done.hit(); });
    done.wait();
  }
  state.SetItemsProcessed(state.iterations() * burst_items);
  pool.join();
}

void burst_tbb(benchmark::State& state) {
  oneapi::tbb::task_arena arena(2);
  countdown done;
  for (auto _ : state) {
    done.reset(burst_items);
    for (int i = 0; i < burst_items; ++i) arena.enqueue([&done] { done.hit(); });
    done.wait();
  }
  state.SetItemsProcessed(state.iterations() * burst_items);
}

struct uv_burst {
  uv_loop_t loop{};
  std::vector<uv_work_t> reqs;
  countdown done;
};

void burst_libuv(benchmark::State& state) {
  // The pool size is read from UV_THREADPOOL_SIZE on first use (set to 2 in main).
  uv_burst b;
  uv_loop_init(&b.loop);
  b.reqs.resize(burst_items);
  for (auto& r : b.reqs) r.data = &b;
  for (auto _ : state) {
    b.done.reset(burst_items);
    for (auto& r : b.reqs) {
      uv_queue_work(
          &b.loop, &r, [](uv_work_t* w) { static_cast<uv_burst*>(w->data)->done.hit(); },
          [](uv_work_t*, int) {});
    }
    // The loop thread collects the completions, as a libuv program must.
    uv_run(&b.loop, UV_RUN_DEFAULT);
    b.done.wait();
  }
  uv_loop_close(&b.loop);
  state.SetItemsProcessed(state.iterations() * burst_items);
}

void burst_stealing_pool(benchmark::State& state) {
  thread_pool::ThreadPool pool(2);
  countdown done;
  for (auto _ : state) {
    done.reset(burst_items);
    for (int i = 0; i < burst_items; ++i) (void)pool.Submit([&done] { done.hit(); });
    done.wait();
  }
  state.SetItemsProcessed(state.iterations() * burst_items);
}

/// The pool people write first: one mutex, one condition variable, std::function tasks.
class naive_pool {
 public:
  explicit naive_pool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~naive_pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lk(mu_);
      tasks_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        f = std::move(tasks_.front());
        tasks_.pop_front();
      }
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

void burst_naive(benchmark::State& state) {
  naive_pool pool(2);
  countdown done;
  for (auto _ : state) {
    done.reset(burst_items);
    for (int i = 0; i < burst_items; ++i) pool.post([&done] { done.hit(); });
    done.wait();
  }
  state.SetItemsProcessed(state.iterations() * burst_items);
}

// ---- pingpong ---------------------------------------------------------------------------------

struct ping_item {
  wq::work w{wq::fn_ops<&ping_item::fn>};
  std::atomic<int> pong{0};
  static void fn(wq::work* item) noexcept {
    auto* self = wq::container_of<&ping_item::w>(item);
    self->pong.store(1, std::memory_order_release);
    self->pong.notify_one();
  }
};

void pingpong_wq(benchmark::State& state) {
  wq::workqueue q{"ping", {.threads = 2}};
  ping_item item;
  const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    item.pong.store(0, std::memory_order_relaxed);
    (void)wq::queue_work(q, item.w);
    item.pong.wait(0, std::memory_order_acquire);
  }
  report_allocs(state, before, static_cast<double>(state.iterations()));
}

void pingpong_asio_post(benchmark::State& state) {
  asio::thread_pool pool(2);
  std::atomic<int> pong{0};
  for (auto _ : state) {
    pong.store(0, std::memory_order_relaxed);
    asio::post(pool, [&pong] {
      pong.store(1, std::memory_order_release);
      pong.notify_one();
    });
    pong.wait(0, std::memory_order_acquire);
  }
  pool.join();
}

// ---- on the application's io_context -------------------------------------------------------
// A queue built on a user's io_context holds outstanding work on it while it has work (Asio's
// convention): one tracked executor copy taken on the idle-to-busy edge and released on the
// busy-to-idle edge. A ping-pong crosses both edges on every round trip, the worst case; the
// baseline is asio::post to the same io_context, run the same way (one thread, a work guard
// keeping run() alive between round trips, as an application's would be).

struct io_runner {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~io_runner() {
    guard.reset();
    thread.join();
  }
};

void pingpong_io_wq(benchmark::State& state) {
  io_runner r;
  wq::workqueue q{r.io, "ping-io"};
  ping_item item;
  const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) {
    item.pong.store(0, std::memory_order_relaxed);
    (void)wq::queue_work(q, item.w);
    item.pong.wait(0, std::memory_order_acquire);
  }
  report_allocs(state, before, static_cast<double>(state.iterations()));
}

void pingpong_io_asio_post(benchmark::State& state) {
  io_runner r;
  std::atomic<int> pong{0};
  for (auto _ : state) {
    pong.store(0, std::memory_order_relaxed);
    asio::post(r.io, [&pong] {
      pong.store(1, std::memory_order_release);
      pong.notify_one();
    });
    pong.wait(0, std::memory_order_acquire);
  }
}

// What one edge pair costs by itself: taking and releasing outstanding work on an io_context.
void io_work_edge(benchmark::State& state) {
  asio::io_context io{1};
  for (auto _ : state) {
    auto tracked = asio::prefer(io.get_executor(), asio::execution::outstanding_work.tracked);
    benchmark::DoNotOptimize(tracked);
  }
}

// ---- dedup ------------------------------------------------------------------------------------

void dedup_wq(benchmark::State& state) {
  wq::workqueue q{"dedup", {.threads = 1}};
  q.pause();  // the item stays pending for the whole run
  burst_item item;
  countdown done;
  item.done = &done;
  done.reset(1);
  (void)wq::queue_work(q, item.w);
  const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
  for (auto _ : state) benchmark::DoNotOptimize(wq::queue_work(q, item.w));
  report_allocs(state, before, static_cast<double>(state.iterations()));
  q.resume();
  done.wait();
}

// ---- debounce ---------------------------------------------------------------------------------

constexpr int debounce_moves = 1'000'000;

struct timed_item {
  wq::delayed_work d{wq::fn_ops<&timed_item::fn>};
  countdown* done = nullptr;
  clock_type::time_point due{};
  std::int64_t late_ns = 0;
  static void fn(wq::work* item) noexcept {
    auto* self = wq::container_of<&timed_item::d>(static_cast<wq::delayed_work*>(item));
    self->late_ns = (clock_type::now() - self->due).count();
    if (self->done != nullptr) self->done->hit();
  }
};

void debounce_wq(benchmark::State& state) {
  wq::workqueue q{"debounce", {.threads = 1}};
  timed_item item;
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    (void)wq::queue_delayed_work(q, item.d, std::chrono::seconds(10));
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for (int i = 0; i < debounce_moves; ++i)
      (void)wq::mod_delayed_work(q, item.d,
                                 std::chrono::seconds(10) + std::chrono::microseconds(i));
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    state.PauseTiming();
    (void)wq::cancel_delayed_work_sync(item.d);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * debounce_moves);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(allocs) / (static_cast<double>(state.iterations()) * debounce_moves));
}

void debounce_asio_timer(benchmark::State& state) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  asio::steady_timer timer(asio::make_strand(io));
  countdown completions;
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    completions.reset(debounce_moves);
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for (int i = 0; i < debounce_moves; ++i) {
      // What a raw Asio user writes to push a deadline later: each call cancels the pending
      // wait (its handler then runs with operation_aborted) and starts a new one.
      timer.expires_after(std::chrono::seconds(10) + std::chrono::microseconds(i));
      timer.async_wait([&completions](const boost::system::error_code&) { completions.hit(); });
    }
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    timer.cancel();  // the last wait
    completions.wait();
  }
  state.SetItemsProcessed(state.iterations() * debounce_moves);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(allocs) / (static_cast<double>(state.iterations()) * debounce_moves));
  guard.reset();
  runner.join();
}

// ---- armcancel --------------------------------------------------------------------------------

void armcancel_wq(benchmark::State& state) {
  wq::workqueue q{"armcancel", {.threads = 2}};
  std::vector<timed_item> items(timer_items);
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    const std::uint64_t before = g_allocs.load(std::memory_order_relaxed);
    for (auto& it : items) (void)wq::queue_delayed_work(q, it.d, std::chrono::seconds(10));
    for (auto& it : items) (void)wq::cancel_delayed_work(it.d);
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(allocs) / (static_cast<double>(state.iterations()) * timer_items));
}

void armcancel_asio_timer(benchmark::State& state) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  for (int i = 0; i < timer_items; ++i)
    timers.push_back(std::make_unique<asio::steady_timer>(asio::make_strand(io)));
  countdown completions;
  for (auto _ : state) {
    completions.reset(timer_items);
    for (auto& t : timers) {
      t->expires_after(std::chrono::seconds(10));
      t->async_wait([&completions](const boost::system::error_code&) { completions.hit(); });
    }
    for (auto& t : timers) t->cancel();
    completions.wait();  // the cancelled waits' handlers have run: the timers are reusable
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  guard.reset();
  runner.join();
}

// ---- lateness ---------------------------------------------------------------------------------

void report_lateness(benchmark::State& state, std::vector<std::int64_t>& late) {
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(late.size() - 1));
    return static_cast<double>(late[i]) / 1000.0;
  };
  state.counters["p50_us"] = benchmark::Counter(pct(50));
  state.counters["p99_us"] = benchmark::Counter(pct(99));
}

constexpr auto lateness_spread = std::chrono::milliseconds(200);

void lateness_wq(benchmark::State& state) {
  wq::workqueue q{"lateness", {.threads = 2}};
  std::vector<timed_item> items(timer_items);
  countdown done;
  for (auto& it : items) it.done = &done;
  std::vector<std::int64_t> late;
  for (auto _ : state) {
    done.reset(timer_items);
    for (int i = 0; i < timer_items; ++i) {
      // Due `delay` after the call (the kernel's and Asio's expires_after meaning); arming
      // 100 000 items takes milliseconds, so a common start time would count that as lateness.
      const auto delay = lateness_spread * i / timer_items + std::chrono::milliseconds(10);
      items[static_cast<std::size_t>(i)].due = clock_type::now() + delay;
      (void)wq::queue_delayed_work(q, items[static_cast<std::size_t>(i)].d, delay);
    }
    done.wait();
    for (const auto& it : items) late.push_back(it.late_ns);
  }
  report_lateness(state, late);
}

void lateness_asio_timer(benchmark::State& state) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  for (int i = 0; i < timer_items; ++i) timers.push_back(std::make_unique<asio::steady_timer>(io));
  std::vector<std::int64_t> late_now(timer_items);
  countdown done;
  std::vector<std::int64_t> late;
  for (auto _ : state) {
    done.reset(timer_items);
    for (int i = 0; i < timer_items; ++i) {
      const auto due =
          clock_type::now() + lateness_spread * i / timer_items + std::chrono::milliseconds(10);
      timers[static_cast<std::size_t>(i)]->expires_at(due);
      timers[static_cast<std::size_t>(i)]->async_wait(
          [&late_now, &done, i, due](const boost::system::error_code&) {
            late_now[static_cast<std::size_t>(i)] = (clock_type::now() - due).count();
            done.hit();
          });
    }
    done.wait();
    late.insert(late.end(), late_now.begin(), late_now.end());
  }
  report_lateness(state, late);
  guard.reset();
  runner.join();
}

// ---- rss --------------------------------------------------------------------------------------

// Heap bytes in use (glibc's mallinfo2): what an armed item costs beyond the process's
// already-resident pages, which /proc/self/statm cannot show for memory the allocator reuses.
long heap_bytes() { return static_cast<long>(mallinfo2().uordblks); }

void rss_wq(benchmark::State& state) {
  wq::workqueue q{"rss", {.threads = 1}};
  for (auto _ : state) {
    const long before = heap_bytes();
    auto items = std::make_unique<timed_item[]>(timer_items);
    for (int i = 0; i < timer_items; ++i)
      (void)wq::queue_delayed_work(q, items[static_cast<std::size_t>(i)].d, std::chrono::hours(1));
    const long after = heap_bytes();
    state.counters["bytes_per_item"] =
        benchmark::Counter(static_cast<double>(after - before) / timer_items);
    for (int i = 0; i < timer_items; ++i)
      (void)wq::cancel_delayed_work_sync(items[static_cast<std::size_t>(i)].d);
  }
}

void rss_asio_timer(benchmark::State& state) {
  asio::io_context io;
  for (auto _ : state) {
    const long before = heap_bytes();
    std::vector<std::unique_ptr<asio::steady_timer>> timers;
    timers.reserve(timer_items);
    for (int i = 0; i < timer_items; ++i) {
      timers.push_back(std::make_unique<asio::steady_timer>(io, std::chrono::hours(1)));
      timers.back()->async_wait([](const boost::system::error_code&) {});
    }
    const long after = heap_bytes();
    state.counters["bytes_per_item"] =
        benchmark::Counter(static_cast<double>(after - before) / timer_items);
    timers.clear();
    io.restart();
    io.poll();
  }
}

}  // namespace

BENCHMARK(burst_wq)->Name("burst/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(burst_wq_named)->Name("burst_named/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(create_wq_named)->Name("create/wq_named");
BENCHMARK(create_strand)->Name("create/strand");
BENCHMARK(burst_asio_post)->Name("burst/asio_post")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(burst_tbb)->Name("burst/tbb")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(burst_libuv)->Name("burst/libuv")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(burst_stealing_pool)
    ->Name("burst/stealing_pool")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(burst_naive)->Name("burst/naive")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(pingpong_wq)->Name("pingpong/wq")->UseRealTime();
BENCHMARK(pingpong_asio_post)->Name("pingpong/asio_post")->UseRealTime();
BENCHMARK(pingpong_io_wq)->Name("pingpong_io/wq")->UseRealTime();
BENCHMARK(pingpong_io_asio_post)->Name("pingpong_io/asio_post")->UseRealTime();
BENCHMARK(io_work_edge)->Name("io_work_edge/asio");
BENCHMARK(dedup_wq)->Name("dedup/wq");
BENCHMARK(debounce_wq)->Name("debounce/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(debounce_asio_timer)
    ->Name("debounce/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(armcancel_wq)->Name("armcancel/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(armcancel_asio_timer)
    ->Name("armcancel/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(lateness_wq)
    ->Name("lateness/wq")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(lateness_asio_timer)
    ->Name("lateness/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(rss_wq)->Name("rss/wq")->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(rss_asio_timer)->Name("rss/asio_timer")->Unit(benchmark::kMillisecond)->Iterations(1);

int main(int argc, char** argv) {
  setenv("UV_THREADPOOL_SIZE", "2", 1);  // before libuv's pool starts
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
