// SPDX-License-Identifier: BSL-1.0
// wq/detail/shared_ref_slot.hpp: the storage in a shared_work / shared_delayed_work for the
// std::shared_ptr reference a pending instance holds. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <memory>
#include <new>
#include <utility>

namespace wq::detail {

/// Storage for the one std::shared_ptr reference a pending item holds.
class shared_ref_slot {
 public:
  template <class T>
  void store(std::shared_ptr<T>&& p) noexcept {
    static_assert(sizeof(std::shared_ptr<T>) <= sizeof(storage_) &&
                  alignof(std::shared_ptr<T>) <= alignof(std::shared_ptr<void>));
    // Safety: the slot is empty (the caller owns PENDING and the previous reference was moved
    // out before PENDING was cleared), so constructing in place does not overwrite a live object.
    ::new (static_cast<void*>(storage_)) std::shared_ptr<T>(std::move(p));
  }
  template <class T>
  std::shared_ptr<T> take() noexcept {
    // Safety: store<T>() constructed exactly this type here; launder because the storage is
    // reused by successive pending instances.
    auto* stored = std::launder(reinterpret_cast<std::shared_ptr<T>*>(storage_));
    std::shared_ptr<T> out = std::move(*stored);
    stored->~shared_ptr();
    return out;
  }

 private:
  alignas(std::shared_ptr<void>) unsigned char storage_[sizeof(std::shared_ptr<void>)];
};

}  // namespace wq::detail
