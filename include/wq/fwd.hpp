// SPDX-License-Identifier: BSL-1.0
// wq/fwd.hpp: forward declarations of wq's public types, for headers that only name them.
//
// Thread safety: declarations only.
#pragma once

#include <wq/config.hpp>

#include <cstdint>

namespace wq {

class jiffies;
class work;
class delayed_work;
class shared_work;
class shared_delayed_work;
struct work_ops;
template <auto Member>
struct id;
template <auto Member>
struct member_traits;
template <class Pointer>
struct work_pointer_traits;
template <class Pointer>
struct enqueue_result;
enum class queue_status;
enum class queue_flags : std::uint8_t;
class workqueue;
class ordered_workqueue;
struct queue_options;
enum class spawn_errc;
class test_clock;

}  // namespace wq
