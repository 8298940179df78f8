// PyTorch operators outside the ATen C++ API (such as the mkldnn:: ops that builds with oneDNN
// register), found through the dispatcher by name. Callers keep the handle in a function-local static.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>

namespace lavin_fast {

// The typed handle of `name`.`overload`, or nullopt when this build of PyTorch has no such op.
template <typename Fn>
std::optional<c10::TypedOperatorHandle<Fn>> find_op(const char* name, const char* overload = "") {
  const auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) return std::nullopt;
  return handle->template typed<Fn>();
}

}  // namespace lavin_fast
