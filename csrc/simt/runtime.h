// The SIMT emulator's runtime: launches a kernel one block at a time, each CUDA thread a fiber
// (fiber.h), and implements what makes threads meet: block barriers, warp collectives, shared memory
// and per-thread state. Everything runs on the calling OS thread; launches on different OS threads
// are independent. Rules and usage: docs/simt.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "simt/host_types.h"

namespace lf::emu {

// Which ready thread runs next, until it reaches a barrier, a warp collective or its end: the lowest
// id (forward), the highest (reverse) or a random one (seeded). The scheduler picks again after every
// switch, so favoured threads run ahead as far as synchronisation lets them. Reverse and random also
// reverse / shuffle the order of the blocks. A race-free kernel is bit-identical under every order.
enum class Schedule : int { kForward = 0, kReverse = 1, kRandom = 2 };

struct LaunchConfig {
  const char* kernel = "kernel";  // for error messages
  dim3 grid, block;
  size_t dynamic_smem = 0;  // bytes behind lf::dynamic_smem()
  Schedule schedule = Schedule::kForward;
  uint64_t seed = 0;  // kRandom's shuffles
};

// What the emulator reports: a deadlock (divergent barrier, a collective waiting for lanes that
// exited or wait elsewhere), a misused collective, an exception escaping a thread. The message names
// the kernel, the block and the threads.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs body(ctx) as every thread of every block. Throws Error, from the caller's stack, after the
// whole launch is abandoned.
void launch(const LaunchConfig& cfg, void (*body)(void*), void* ctx);

// launch(cfg, kernel, args...): each thread calls kernel(args...) on a copy of the converted arguments,
// as a CUDA launch passes parameters by value.
template <typename... P, typename... A>
void launch(const LaunchConfig& cfg, void (*kernel)(P...), A&&... args) {
  struct Call {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> args;
  } call{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  launch(cfg, [](void* c) {
    auto* k = static_cast<Call*>(c);
    std::apply(k->kernel, k->args);
  }, &call);
}

// ---- inside a kernel (called from an emulated thread only) ----

struct ThreadInfo {
  uint3 idx;        // threadIdx
  unsigned linear;  // x + y * blockDim.x + z * blockDim.x * blockDim.y
  unsigned lane, warp;
};
const ThreadInfo& this_thread();

// Stops the launch with `what`, prefixed by the kernel, block and thread. Jumps to the scheduler,
// which throws Error from the host stack (exceptions never cross fiber stacks).
[[noreturn]] void fail(const std::string& what);

// __syncthreads: waits until every thread of the block that has not exited arrived. Threads waiting at
// barriers of different source lines are a divergent barrier, reported.
void syncthreads(std::source_location where = std::source_location::current());

// Shared memory of the current block, poisoned (0xff bytes: NaN as floats, -1 as integers) at every
// block start. Static arrays are keyed by `site`, a unique address per declaration.
unsigned char* dynamic_smem();
unsigned char* static_smem(const void* site, size_t bytes, size_t align);

// The generic warp collective that shuffles, ballots and __syncwarp are built on (collectives.h), and
// that other warp-level operations (mma, ldmatrix) can use: every lane named in `mask` calls it with
// the same mask and the same `op` (an identity of the operation, e.g. the address of a static);
// when the last one arrives, compute(ins, outs, all) runs once, where ins[l] / outs[l] point to lane
// l's input and output (null for lanes outside mask) and `all` is the compute's own argument. Each
// caller blocks until then. The calling lane must be in mask.
struct CollectiveCall {
  const void* op;
  void (*compute)(const void* const* ins, void* const* outs, unsigned mask, const void* all);
  const void* arg;
};
void warp_collective_raw(unsigned mask, const CollectiveCall& call, const void* in, void* out,
                         std::source_location where);

// Per-thread state for extensions (e.g. a cp.async queue): one T per emulated thread, value-initialised
// on first use, destroyed when the thread's block finishes (or the launch fails).
struct StateSlot {
  const void* key;
  void* obj;
  void (*destroy)(void*);
};
void* find_thread_state(const void* key);
void add_thread_state(const StateSlot& slot);

template <typename T>
T& thread_state() {
  static const char key = 0;
  if (void* p = find_thread_state(&key)) return *static_cast<T*>(p);
  T* obj = new T();
  add_thread_state(StateSlot{&key, obj, [](void* o) { delete static_cast<T*>(o); }});
  return *obj;
}

}  // namespace lf::emu

// The CUDA built-in variables of the running emulated thread (updated by the scheduler at each switch).
extern thread_local lf::emu::uint3 threadIdx;
extern thread_local lf::emu::uint3 blockIdx;
extern thread_local lf::emu::dim3 blockDim;
extern thread_local lf::emu::dim3 gridDim;
