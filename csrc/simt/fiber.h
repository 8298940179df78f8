// Cooperative fibers for the SIMT emulator: each emulated CUDA thread runs on its own stack and hands
// control back to the host (the scheduler) explicitly. Created with makecontext, switched with
// _setjmp/_longjmp (about 14 ns a switch, against 225 ns for swapcontext's signal-mask system call).
// All switches go through the host: host -> fiber (resume) and fiber -> host (yield_to_host).
#pragma once

#include <csetjmp>
#include <cstddef>
#include <ucontext.h>

namespace lf::emu {

class Fiber {
 public:
  // 128 KiB: kernels keep small register arrays, but -O0 and sanitizer builds need several times the
  // frames of -O3. Below the stack, one PROT_NONE guard page turns an overflow into a SIGSEGV instead
  // of silently corrupting the next fiber's stack.
  static constexpr size_t kStackBytes = 128 * 1024;

  Fiber();
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // (Re)starts the fiber: the next resume() runs entry(arg) from the top of a fresh stack. If entry
  // returns, the fiber leave()s.
  void reset(void (*entry)(void*), void* arg);

  // Host side: runs the fiber until it yields or finishes.
  void resume();
  // Fiber side: back to the host's resume(); returns when the host resumes this fiber again.
  void yield_to_host();
  // Fiber side: back to the host for good (the host may reset() or abandon this fiber).
  [[noreturn]] void leave();

 private:
  static void trampoline(int lo, int hi);

  void* map_ = nullptr;  // guard page + stack
  size_t map_bytes_ = 0;
  ucontext_t start_;     // only for the first entry into a fresh stack
  jmp_buf self_;         // where the fiber continues after yielding
  jmp_buf* host_ = nullptr;  // where the host continues after the fiber yields
  // ThreadSanitizer fibers (LF_EMU_TSAN builds, docs/simt.md): this fiber's and the host's.
  void* tsan_self_ = nullptr;
  void* tsan_host_ = nullptr;
  void (*entry_)(void*) = nullptr;
  void* arg_ = nullptr;
  bool started_ = false;
};

}  // namespace lf::emu
