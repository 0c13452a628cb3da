// SPDX-License-Identifier: BSL-1.0
// src/engine/descriptions.cpp: the table of worker descriptions (descriptions.hpp).
#include "descriptions.hpp"

#include <cstdio>
#include <mutex>
#include <new>
#include <vector>

namespace wq::detail {
namespace {

struct entry {
  const worker_slot* slot;
  char text[description_len + 1];
};

// The slots described now, unordered: as many as workers run a described item at once, so a
// linear search. Guarded by `mu` (a leaf).
struct table {
  std::mutex mu;
  std::vector<entry> entries;
};

// Never destroyed: pool threads are never joined (worker_pool.hpp) and may finish a described
// item during static destruction.
table& the_table() noexcept {
  static table* const t = new table;
  return *t;
}

entry* find_locked(table& t, const worker_slot* slot) noexcept {
  for (entry& e : t.entries)
    if (e.slot == slot) return &e;
  return nullptr;
}

}  // namespace

bool set_description(const worker_slot* slot, const char* text) noexcept {
  table& t = the_table();
  std::lock_guard lk(t.mu);
  entry* e = find_locked(t, slot);
  if (e == nullptr) {
    try {
      e = &t.entries.emplace_back(entry{slot, {}});
    } catch (const std::bad_alloc&) {
      return false;
    }
  }
  std::snprintf(e->text, sizeof e->text, "%s", text);
  return true;
}

void clear_description(const worker_slot* slot) noexcept {
  table& t = the_table();
  std::lock_guard lk(t.mu);
  entry* e = find_locked(t, slot);
  if (e == nullptr) return;
  *e = t.entries.back();
  t.entries.pop_back();
}

bool copy_description(const worker_slot* slot, char (&out)[description_len + 1]) noexcept {
  table& t = the_table();
  std::lock_guard lk(t.mu);
  const entry* e = find_locked(t, slot);
  if (e == nullptr) return false;
  std::snprintf(out, sizeof out, "%s", e->text);
  return true;
}

}  // namespace wq::detail
