// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/kernel.hpp: the printf-named constructors and the CPU and NUMA-node
// hint checks.
#include <wq/kernel.hpp>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>

#include <cstdarg>
#include <cstdio>
#include <new>
#include <string>

#include <unistd.h>

namespace wq {

namespace {

// printf into `out` (two passes: measure, then write). Returns: false if `out` could not grow
// (out of memory). noexcept, so the caller can always reach its va_end before it throws.
bool vformat(std::string& out, const char* fmt, std::va_list args) noexcept {
  std::va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  bool ok = true;
  if (n > 0) {
    try {
      out.resize(static_cast<std::size_t>(n));
      std::vsnprintf(out.data(), out.size() + 1, fmt, again);
    } catch (const std::bad_alloc&) {
      ok = false;
    }
  }
  va_end(again);
  return ok;
}

// The CPUs the kernel may bring online (sysconf counts configured ones); at least 1.
int nr_cpus() noexcept {
  static const int n = [] {
    const long c = ::sysconf(_SC_NPROCESSORS_CONF);
    return c > 0 ? static_cast<int>(c) : 1;
  }();
  return n;
}

// The NUMA nodes the machine may have: one past the last in /sys/devices/system/node/possible
// ("0", "0-3"); 1 if that cannot be read (no NUMA support: one node).
int nr_nodes() noexcept {
  static const int n = [] {
    std::FILE* f = std::fopen("/sys/devices/system/node/possible", "re");
    if (f == nullptr) return 1;
    int first = 0;
    int last = 0;
    const int got = std::fscanf(f, "%d-%d", &first, &last);
    std::fclose(f);
    if (got == 1) last = first;
    return got >= 1 && last >= 0 ? last + 1 : 1;
  }();
  return n;
}

}  // namespace

namespace detail {

void check_cpu_hint(int cpu, const char* call) noexcept {
  if (cpu == work_cpu_unbound || (cpu >= 0 && cpu < nr_cpus())) return;
  report(errc::bad_cpu_hint, "%s: CPU %d is not one of this machine's %d: hint ignored", call, cpu,
         nr_cpus());
}

void check_node_hint(int node, const char* call) noexcept {
  if (node == -1 || (node >= 0 && node < nr_nodes())) return;
  report(errc::bad_cpu_hint, "%s: NUMA node %d is not one of this machine's %d: hint ignored", call,
         node, nr_nodes());
}

}  // namespace detail

std::unique_ptr<workqueue> alloc_workqueue(const char* fmt, queue_flags flags, int max_active,
                                           ...) {
  std::va_list args;
  va_start(args, max_active);
  std::string name;
  const bool formatted = vformat(name, fmt, args);
  va_end(args);
  if (!formatted) throw std::bad_alloc();
  return std::make_unique<workqueue>(name, queue_options{flags, max_active});
}

std::unique_ptr<ordered_workqueue> alloc_ordered_workqueue(const char* fmt, queue_flags flags,
                                                           ...) {
  std::va_list args;
  va_start(args, flags);
  std::string name;
  const bool formatted = vformat(name, fmt, args);
  va_end(args);
  if (!formatted) throw std::bad_alloc();
  return std::make_unique<ordered_workqueue>(name, queue_options{flags});
}

}  // namespace wq
