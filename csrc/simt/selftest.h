// Self-tests of the SIMT emulator: kernels in the dialect proving that the emulator catches what it
// claims to (a missing barrier changes results between schedules, a divergent barrier or a collective
// naming an exited lane is reported, ...) and that its shuffles, votes, shared memory and conversions
// follow CUDA. Compiled into the extension so that pytest (through the test-only submodule
// lavin_fast._C.testing) and CTest (csrc/tests/test_simt.cpp) run the same list.
#pragma once

#include <vector>

namespace lf::emu {

struct SelfTest {
  const char* name;
  void (*run)();  // throws std::runtime_error saying what failed
  // Or, for a kernel the emulator must stop: part of the message of the Error that run() must throw.
  const char* expected_error;
};

const std::vector<SelfTest>& selftests();
// Runs t, checking the error it must raise if any; throws std::runtime_error if it fails.
void run_selftest(const SelfTest& t);

}  // namespace lf::emu
