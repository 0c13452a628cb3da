// SPDX-License-Identifier: BSL-1.0
// The public face of the worker pools (wq/pool.hpp): settings, state and dump.
#include <wq/pool.hpp>

#include "worker_pool.hpp"

namespace wq {

const char* to_string(pool_kind kind) noexcept {
  switch (kind) {
    case pool_kind::normal: return "normal";
    case pool_kind::highpri: return "highpri";
    case pool_kind::unbound: return "unbound";
    case pool_kind::unbound_highpri: return "unbound_highpri";
  }
  return "?";
}

pool_options set_pool_options(pool_kind kind, const pool_options& options) noexcept {
  try {
    detail::worker_pool& p = detail::pool_of_kind(kind);
    pool_options old = p.options();
    p.set_options(options);
    return old;
  } catch (...) {
    return pool_options{};  // out of memory for the pool: nothing to configure yet
  }
}

pool_options get_pool_options(pool_kind kind) noexcept {
  try {
    return detail::pool_of_kind(kind).options();
  } catch (...) {
    return pool_options{};
  }
}

std::vector<pool_state> pool_states() {
  std::vector<pool_state> out;
  out.reserve(nr_pool_kinds);
  for (std::size_t i = 0; i < nr_pool_kinds; ++i) {
    const auto kind = static_cast<pool_kind>(i);
    if (const detail::worker_pool* p = detail::existing_pool(kind)) {
      out.push_back(p->state());
    } else {
      pool_state s;
      s.kind = kind;
      out.push_back(s);
    }
  }
  return out;
}

std::string dump_pools() {
  std::string out;
  for (std::size_t i = 0; i < nr_pool_kinds; ++i) {
    if (const detail::worker_pool* p = detail::existing_pool(static_cast<pool_kind>(i)))
      p->dump(out);
  }
  if (out.empty()) out = "no pool in use\n";
  return out;
}

}  // namespace wq
