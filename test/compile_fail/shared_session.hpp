// SPDX-License-Identifier: BSL-1.0
// The item the untyped_*_on_shared_item compile-fail tests misuse: a shared_ptr-owned session
// with a shared_work and a shared_delayed_work member (each file is its own translation unit,
// so the struct lives here once).
#pragma once

#include <chrono>
#include <memory>

#include <wq/cancel.hpp>
#include <wq/workqueue.hpp>

struct session {
  wq::shared_work flush;
  wq::shared_delayed_work timeout;
  static void run(std::shared_ptr<session>, wq::id<&session::flush>) noexcept {}
  static void run(std::shared_ptr<session>, wq::id<&session::timeout>) noexcept {}
};
