// SPDX-License-Identifier: BSL-1.0
// The error category of try_spawn.
#include <wq/spawn.hpp>

#include <wq/diagnostics.hpp>

#include <string>

namespace wq {
namespace {
class spawn_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "wq.spawn"; }
  std::string message(int ev) const override {
    switch (static_cast<spawn_errc>(ev)) {
      case spawn_errc::rejected: return "the queue refused the closure (draining or destroyed)";
    }
    return "unknown wq.spawn error";
  }
};
}  // namespace

const std::error_category& spawn_category() noexcept {
  static const spawn_category_impl category;
  return category;
}

}  // namespace wq
