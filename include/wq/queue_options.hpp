// SPDX-License-Identifier: BSL-1.0
// wq/queue_options.hpp: `queue_options`, how a workqueue is created: its flags, its max_active
// and, for a queue without an executor, whether it owns a private thread pool.
//
//   wq::workqueue events{"events"};                                     // all defaults
//   wq::workqueue io{"io", {.flags = wq::queue_flags::unbound, .max_active = 4}};
//   wq::workqueue own{"own", {.threads = 2}};                           // a private pool
//   wq::ordered_workqueue session{socket.get_executor(), "session"};   // on a strand
//
// Thread safety: a plain value.
#pragma once

#include <wq/config.hpp>

#include <wq/flags.hpp>

namespace wq {

/// The options of a new workqueue (or ordered_workqueue); an aggregate meant for designated
/// initializers. Every field's default is what a queue without options gets.
struct queue_options {
  /// WQ_* flags (wq/flags.hpp). Default: none (a concurrency-managed queue on the normal pool).
  queue_flags flags = queue_flags::none;
  /// Most items running at once (rule 37): 0 means 1024 (default_max_active); other values are
  /// clamped to [1, 2048] and reported (errc::max_active_clamped). An ordered queue accepts
  /// only 0 or 1 (anything else is reported and 1 is used).
  int max_active = 0;
  /// 0 (the default): the queue runs on the process-wide pool its flags choose (wq/pool.hpp),
  /// and no thread starts when it is created. N > 0: the queue owns a private
  /// `asio::thread_pool` of N threads, joined when the queue is destroyed. Only for queues
  /// without an executor: a queue given an executor runs on it, and a non-zero value there is
  /// refused (std::invalid_argument).
  unsigned threads = 0;
};

}  // namespace wq
