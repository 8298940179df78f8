// The exception the host SIMT emulator throws when a kernel breaks a rule of the dialect or of PTX
// (a misaligned cp.async, an ldmatrix of 3 matrices, ...): on a GPU these are undefined behaviour or a
// compile error, so the tests must fail loudly instead of computing something plausible.
#pragma once

#include <stdexcept>

namespace lf::emu {

struct DialectError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lf::emu
