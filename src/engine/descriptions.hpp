// SPDX-License-Identifier: BSL-1.0
// src/engine/descriptions.hpp: what set_worker_desc() said about the item a worker runs, kept
// beside the workers rather than in them (layer 1 of src/engine/README.md).
//
// Few items describe themselves (the kernel's set_worker_desc is a debugging aid), so a worker
// slot keeps one flag (worker_slot::described) and the text lives here, in one process-wide
// table of the slots described now: a pointer per slot less in every queue. Entries are made by
// describe_locked (inspect.cpp), read by dump(), and dropped when the item finishes
// (finish_one) or its queue's core is made again. The table's mutex is a leaf, taken under a
// core's mutex; nothing is locked under it.
#pragma once

#include <cstddef>

namespace wq::detail {

struct worker_slot;

/// The longest description kept, in characters (the kernel's WORKER_DESC_LEN is 24).
inline constexpr std::size_t description_len = 31;

/// Effects: records `text` (its first description_len characters) as what `slot` runs now,
/// replacing an earlier one. Returns: false if out of memory (nothing changed). Thread safety:
/// any thread. Allocates: the table's first growth past its peak number of described slots.
bool set_description(const worker_slot* slot, const char* text) noexcept;

/// Effects: forgets `slot`'s description, if any. Thread safety: any thread. Never allocates.
void clear_description(const worker_slot* slot) noexcept;

/// Effects: copies `slot`'s description, 0-terminated, into `out` (description_len + 1 bytes).
/// Returns: whether it has one. Thread safety: any thread.
bool copy_description(const worker_slot* slot, char (&out)[description_len + 1]) noexcept;

}  // namespace wq::detail
