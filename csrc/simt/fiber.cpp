// With _FORTIFY_SOURCE, glibc turns longjmp into __longjmp_chk, which aborts when the target frame is
// on another stack than the current one: exactly what a fiber switch does. Undefined before any
// header so that no system header sees it (docs/spec/simt_emulation.md).
#undef _FORTIFY_SOURCE

#include "simt/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

#ifdef LF_EMU_TSAN
#include <sanitizer/tsan_interface.h>
// Switches without synchronising: the runtime's barriers and collectives say what orders what.
#define LF_TSAN_SWITCH(to) __tsan_switch_to_fiber(to, __tsan_switch_to_fiber_no_sync)
#else
#define LF_TSAN_SWITCH(to) ((void)0)
#endif

namespace lf::emu {

Fiber::Fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  map_bytes_ = kStackBytes + page;
  map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
              -1, 0);
  if (map_ == MAP_FAILED) throw std::bad_alloc();
  if (mprotect(map_, page, PROT_NONE) != 0) {  // stacks grow down: the guard is the lowest page
    munmap(map_, map_bytes_);
    throw std::bad_alloc();
  }
#ifdef LF_EMU_TSAN
  tsan_self_ = __tsan_create_fiber(0);
#endif
}

Fiber::~Fiber() {
#ifdef LF_EMU_TSAN
  __tsan_destroy_fiber(tsan_self_);
#endif
  munmap(map_, map_bytes_);
}

void Fiber::reset(void (*entry)(void*), void* arg) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  getcontext(&start_);
  start_.uc_stack.ss_sp = static_cast<char*>(map_) + page;
  start_.uc_stack.ss_size = kStackBytes;
  start_.uc_link = nullptr;  // trampoline never returns: it leave()s
  // makecontext passes only ints: the Fiber pointer goes in two halves.
  const auto self = reinterpret_cast<uintptr_t>(this);
  makecontext(&start_, reinterpret_cast<void (*)()>(&Fiber::trampoline), 2, static_cast<int>(self & 0xffffffffu),
              static_cast<int>(static_cast<uint64_t>(self) >> 32));
  entry_ = entry;
  arg_ = arg;
  started_ = false;
}

void Fiber::trampoline(int lo, int hi) {
  const uintptr_t self = static_cast<uintptr_t>(static_cast<uint32_t>(lo)) |
                         (static_cast<uintptr_t>(static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32));
  Fiber* f = reinterpret_cast<Fiber*>(self);
  f->entry_(f->arg_);
  f->leave();
}

void Fiber::resume() {
  jmp_buf host;
  host_ = &host;
  if (_setjmp(host) == 0) {
#ifdef LF_EMU_TSAN
    tsan_host_ = __tsan_get_current_fiber();
#endif
    LF_TSAN_SWITCH(tsan_self_);
    if (!started_) {
      started_ = true;
      setcontext(&start_);  // one signal-mask system call per fiber start, not per switch
    }
    _longjmp(self_, 1);
  }
}

void Fiber::yield_to_host() {
  if (_setjmp(self_) == 0) {
    LF_TSAN_SWITCH(tsan_host_);
    _longjmp(*host_, 1);
  }
}

void Fiber::leave() {
  LF_TSAN_SWITCH(tsan_host_);
  _longjmp(*host_, 1);
}

}  // namespace lf::emu
