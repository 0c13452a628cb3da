// SPDX-License-Identifier: BSL-1.0
// wq/detail/handler_memory.hpp: the allocator wq associates with the Asio handlers it posts
// (worker handlers and timer completions), so posting them allocates nothing in steady state.
//
// Blocks come from size classes (128, 256 and 512 bytes) kept in a small per-thread cache backed
// by a process-wide free list. Blocks are recycled; those a list did not need for a whole second
// go back to the heap (checked on wq's timer thread, which the first list to grow past its floor
// starts if delayed items have not), down to 1024 per class plus what handler_reserve added.
// Larger requests go to operator new. The pool is immortal, so handlers destroyed during static
// destruction or on threads that outlive main() can still return their memory. Nothing here is
// a user contract.
#pragma once

#include <wq/config.hpp>

#include <cstddef>
#include <cstdint>

namespace wq::detail {

/// Returns a block of at least `size` bytes aligned to `align` (at most alignof(max_align_t)).
/// Throws std::bad_alloc only when a new block must be made and the system is out of memory.
void* handler_allocate(std::size_t size, std::size_t align);

/// Returns a block obtained from handler_allocate with the same size and alignment.
void handler_deallocate(void* p, std::size_t size, std::size_t align) noexcept;

/// Adds `count` free blocks able to hold `size` bytes to the process-wide free list, so that
/// that many more handlers can be in flight before the pool has to grow, and raises by `count`
/// the number of blocks of that size kept however long unused. The pool otherwise grows on
/// demand to the peak number of handlers in flight plus what sits in per-thread caches (at most
/// 32 blocks per size class per thread), and gives back what it did not need for a second.
/// Throws std::bad_alloc. Thread safety: any thread.
void handler_reserve(std::size_t size, std::size_t count);

/// Returns: how many free blocks the process-wide lists hold now (not counting per-thread
/// caches). Thread safety: any thread (takes the pool's mutex). Complexity: O(1).
std::size_t handler_blocks_free() noexcept;

/// Returns: how many blocks the pool has given back to the heap (trimmed) since the process
/// started, counted once their operator delete has returned, so that a count of live heap
/// blocks read after this one never misses a block counted here. Thread safety: any thread.
/// Memory ordering: relaxed (a statistic; a reader that needs the frees to have happened polls).
std::uint64_t handler_blocks_trimmed() noexcept;

/// A stateless allocator over handler_allocate, suitable as an Asio associated allocator.
template <class T>
struct handler_allocator {
  using value_type = T;
  handler_allocator() noexcept = default;
  template <class U>
  handler_allocator(const handler_allocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(std::size_t n) {
    return static_cast<T*>(handler_allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    handler_deallocate(p, n * sizeof(T), alignof(T));
  }
  template <class U>
  bool operator==(const handler_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace wq::detail
