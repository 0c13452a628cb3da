// SPDX-License-Identifier: BSL-1.0
// wq/impl/work.hpp: template bodies of wq/work.hpp: the trampoline table of a C-style work
// function.
#pragma once

// Part of <wq/work.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_WORK_HPP_DECLARED
#error "<wq/impl/work.hpp> is part of <wq/work.hpp>: include <wq/work.hpp>"
#endif

#include <wq/detail/value_name.hpp>
#include <wq/detail/work.hpp>

namespace wq::detail {

template <void (*F)(work*) noexcept>
struct fn_ops_holder {
  static void run(work* item) noexcept {
    begin_run(item);
    F(item);
  }
  static void drop(work* item) noexcept { clear_pending(item); }
  static constexpr work_ops value{&run,  &drop, value_name_holder<F>::storage.data(),
                                  false, false, true};
};

}  // namespace wq::detail
