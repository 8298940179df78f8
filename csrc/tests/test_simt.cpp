// The SIMT emulator's self-tests (csrc/simt/selftest.cpp), as one CTest test; pytest runs the same
// list through lavin_fast._C.testing.simt_selftest (tests/test_simt.py).
#include <cstdio>
#include <stdexcept>

#include "simt/selftest.h"
#include "tests/expect.h"

int main() {
  for (const lf::emu::SelfTest& t : lf::emu::selftests()) {
    lf_test::run(t.name, [&] {
      try {
        lf::emu::run_selftest(t);
      } catch (const std::runtime_error& e) {
        lf_test::fail(__FILE__, __LINE__, std::string(t.name) + ": " + e.what());
      }
    });
  }
  return lf_test::finish();
}
