// A minimal check library for the C++ tests (no GoogleTest: nothing to download or install). A failed
// EXPECT prints where and why and the test carries on; main() runs each test function through
// lf_test::run and ends with `return lf_test::finish();`, which exits non-zero if anything failed.
#pragma once

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>

namespace lf_test {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

// Runs one test function; an exception escaping it is a failure, and the other tests still run.
template <typename F>
void run(const char* name, F&& test) {
  try {
    test();
  } catch (const c10::Error& e) {
    ++failures();
    std::fprintf(stderr, "%s: FAILED: uncaught c10::Error: %s\n", name, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ++failures();
    std::fprintf(stderr, "%s: FAILED: uncaught exception: %s\n", name, e.what());
  }
}

inline int finish() {
  if (failures()) {
    std::fprintf(stderr, "%d check(s) failed\n", failures());
    return EXIT_FAILURE;
  }
  std::printf("all checks passed\n");
  return EXIT_SUCCESS;
}

// Whether `stmt` throws exactly an `Exc` (or a subclass) whose message contains `needle`. `Exc` is a
// c10::Error or any other std::exception.
template <typename Exc, typename F>
std::string throws_with(F&& stmt, const std::string& needle) {
  try {
    stmt();
  } catch (const Exc& e) {
    // c10 errors without their backtrace; any other std::exception by what().
    std::string msg;
    if constexpr (requires { e.what_without_backtrace(); }) msg = e.what_without_backtrace();
    else msg = e.what();
    if (msg.find(needle) == std::string::npos) return "message lacks '" + needle + "': " + msg;
    return "";
  } catch (const c10::Error& e) {
    return std::string("threw another c10::Error subclass: ") + e.what_without_backtrace();
  }
  return "did not throw";
}

}  // namespace lf_test

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) lf_test::fail(__FILE__, __LINE__, "EXPECT(" #cond ")");     \
  } while (0)

#define EXPECT_EQ(a, b)                                                                   \
  do {                                                                                    \
    const auto& lf_a_ = (a);                                                              \
    const auto& lf_b_ = (b);                                                              \
    if (!(lf_a_ == lf_b_)) {                                                              \
      std::ostringstream lf_s_;                                                           \
      lf_s_ << #a " == " #b ": " << lf_a_ << " != " << lf_b_;                             \
      lf_test::fail(__FILE__, __LINE__, lf_s_.str());                                     \
    }                                                                                     \
  } while (0)

// EXPECT_THROWS(c10::ValueError, "cu_seqlens", some_call(...));
#define EXPECT_THROWS(Exc, needle, ...)                                                        \
  do {                                                                                         \
    const std::string lf_r_ = lf_test::throws_with<Exc>([&] { (void)(__VA_ARGS__); }, needle); \
    if (!lf_r_.empty()) lf_test::fail(__FILE__, __LINE__, #__VA_ARGS__ " -> " + lf_r_);        \
  } while (0)
