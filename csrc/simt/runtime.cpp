// The emulator's scheduler: blocks one after another; in each, it picks a ready thread by the launch's
// policy (forward: the lowest id, reverse: the highest, random: any, seeded) and runs it until it
// blocks (barrier, warp collective) or ends, until every thread ended. Picking again after every
// switch, rather than giving each ready thread a turn per round, lets the favoured threads run ahead
// through many collectives while others have not moved: a warp that rewrites shared memory before the
// others read it is caught. When no thread is ready and some have not ended, nothing can ever release
// them: a deadlock, reported with what every waiting thread waits for.
#include "simt/runtime.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "simt/fiber.h"
#include "simt/ready_set.h"

#ifdef LF_EMU_TSAN
// ThreadSanitizer builds (docs/simt.md): fibers switch without synchronising, so these tell TSan what
// the emulator orders: a barrier or collective is a release by every arriving thread and an acquire by
// each when it continues; a block's start and end order its threads after and before the host. This
// file itself is not instrumented: the scheduler's own state is no kernel data.
#include <sanitizer/tsan_interface.h>
#define LF_TSAN_RELEASE(addr) __tsan_release(addr)
#define LF_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define LF_TSAN_RELEASE(addr) ((void)0)
#define LF_TSAN_ACQUIRE(addr) ((void)0)
#endif

thread_local lf::emu::uint3 threadIdx;
thread_local lf::emu::uint3 blockIdx;
thread_local lf::emu::dim3 blockDim;
thread_local lf::emu::dim3 gridDim;

namespace lf::emu {
namespace {

constexpr int kWarp = 32;
constexpr unsigned char kPoison = 0xff;
constexpr size_t kStaticSmemBytes = 48 * 1024;  // CUDA's limit for static __shared__ arrays

enum class Wait { kReady, kBarrier, kCollective, kExited };

struct Thread {
  ThreadInfo info;
  Fiber* fiber;
  Wait wait = Wait::kReady;
  std::source_location site;  // of the barrier or collective it waits at
  // While waiting at a collective: the lane's operands.
  unsigned mask = 0;
  const void* in = nullptr;
  void* out = nullptr;
  std::vector<StateSlot> state;
};

// A warp collective some lanes of `mask` have reached.
struct Pending {
  unsigned mask, arrived;
  const void* op;
};

struct Launch {
  LaunchConfig cfg;
  void (*body)(void*);
  void* ctx;
  std::vector<Thread> threads;
  std::vector<std::vector<Pending>> pending;  // per warp
  std::vector<unsigned char> dynamic_smem, static_smem;
  std::vector<std::pair<const void*, size_t>> static_sites;  // site -> offset, fixed for the launch
  size_t static_used = 0;
  ReadySet ready;
  unsigned live = 0, at_barrier = 0;
  const Thread* barrier_first = nullptr;  // the first thread waiting at the current barrier
  char block_start = 0, block_end = 0, barrier_sync = 0;  // addresses for ThreadSanitizer
  Thread* current = nullptr;
  std::string error;  // set by fail() on a fiber
};

// The launch running on this OS thread, and the fibers it reuses from launch to launch.
thread_local Launch* g_launch = nullptr;
thread_local std::vector<std::unique_ptr<Fiber>> g_fibers;

std::string dims(const uint3& v) {
  std::ostringstream s;
  s << "(" << v.x << "," << v.y << "," << v.z << ")";
  return s.str();
}

std::string where(const std::source_location& loc) {
  const char* file = loc.file_name();
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  return std::string(file) + ":" + std::to_string(loc.line());
}

std::string prefix(const Launch& l) {
  return "SIMT emulator: kernel '" + std::string(l.cfg.kernel) + "' block " + dims(blockIdx) + ": ";
}

std::string lanes_str(unsigned bits) {
  std::string s;
  for (int i = 0; i < kWarp; ++i) {
    if (!(bits >> i & 1u)) continue;
    if (!s.empty()) s += ',';
    s += std::to_string(i);
  }
  return s.empty() ? "none" : s;
}

std::string mask_str(unsigned m) {
  std::ostringstream s;
  s << "0x" << std::hex << m;
  return s.str();
}

Launch& launch_state() {
  if (!g_launch) throw Error("SIMT emulator: a kernel function was called outside an emulated launch");
  return *g_launch;
}

void switch_to_host(Launch& l) { l.current->fiber->yield_to_host(); }

// Fiber entry: the thread's body, then its end (the scheduler resumes it for the next block).
void thread_main(void* arg) {
  Launch& l = *static_cast<Launch*>(arg);
  for (;;) {
    LF_TSAN_ACQUIRE(&l.block_start);
    // Leaving the fiber from inside a catch block would leave the exception on this OS thread's
    // stack of caught exceptions: record the message, leave after the handler.
    try {
      l.body(l.ctx);
    } catch (const std::exception& e) {
      l.error = prefix(l) + "thread " + dims(l.current->info.idx) + ": an exception escaped: " + e.what();
    } catch (...) {
      l.error = prefix(l) + "thread " + dims(l.current->info.idx) + ": an exception escaped";
    }
    if (!l.error.empty()) l.current->fiber->leave();
    Thread& t = *l.current;
    t.wait = Wait::kExited;
    --l.live;
    LF_TSAN_RELEASE(&l.block_end);
    switch_to_host(l);
  }
}

void make_ready(Launch& l, Thread& t) {
  t.wait = Wait::kReady;
  l.ready.insert(t.info.linear);
}

void release_barrier(Launch& l) {
  for (Thread& t : l.threads) {
    if (t.wait == Wait::kBarrier) make_ready(l, t);
  }
  l.at_barrier = 0;
}

// Describes every thread that is not ready, for a deadlock report.
std::string deadlock_report(const Launch& l) {
  std::ostringstream s;
  s << "deadlock: no thread can continue.";
  std::vector<std::pair<std::string, std::vector<unsigned>>> barriers;
  for (const Thread& t : l.threads) {
    if (t.wait != Wait::kBarrier) continue;
    const std::string w = where(t.site);
    auto it = std::find_if(barriers.begin(), barriers.end(), [&](const auto& b) { return b.first == w; });
    if (it == barriers.end()) it = barriers.insert(barriers.end(), {w, {}});
    it->second.push_back(t.info.linear);
  }
  if (barriers.size() > 1) s << " Divergent __syncthreads:";
  for (const auto& [w, ids] : barriers) {
    s << " threads";
    for (unsigned i : ids) s << " " << i;
    s << " wait at __syncthreads (" << w << ");";
  }
  for (size_t w = 0; w < l.pending.size(); ++w) {
    for (const Pending& p : l.pending[w]) {
      unsigned exited = 0, elsewhere = 0;
      for (int lane = 0; lane < kWarp; ++lane) {
        const size_t id = w * kWarp + lane;
        if (!(p.mask >> lane & 1u) || (p.arrived >> lane & 1u)) continue;
        if (id >= l.threads.size() || l.threads[id].wait == Wait::kExited) {
          exited |= 1u << lane;
        } else {
          elsewhere |= 1u << lane;
        }
      }
      const Thread& first = l.threads[w * kWarp + __builtin_ctz(p.arrived)];
      s << " warp " << w << ": lanes " << lanes_str(p.arrived) << " wait at a warp collective with mask "
        << mask_str(p.mask) << " (" << where(first.site) << ")";
      if (exited) s << ", which names lanes " << lanes_str(exited) << " that exited (or do not exist)";
      if (elsewhere) s << ", while lanes " << lanes_str(elsewhere) << " wait elsewhere";
      s << ";";
    }
  }
  return s.str();
}

// Runs thread t until it blocks or ends; false if the launch failed on it.
bool run_thread(Launch& l, Thread& t) {
  l.current = &t;
  threadIdx = t.info.idx;
  t.fiber->resume();
  l.current = nullptr;
  return l.error.empty();
}

std::vector<unsigned> block_order(const Launch& l, std::mt19937_64& rng) {
  const unsigned n = l.cfg.grid.x * l.cfg.grid.y * l.cfg.grid.z;
  std::vector<unsigned> order(n);
  for (unsigned i = 0; i < n; ++i) order[i] = i;
  if (l.cfg.schedule == Schedule::kReverse) std::reverse(order.begin(), order.end());
  if (l.cfg.schedule == Schedule::kRandom) std::shuffle(order.begin(), order.end(), rng);
  return order;
}

void run_block(Launch& l, std::mt19937_64& rng) {
  std::fill(l.dynamic_smem.begin(), l.dynamic_smem.end(), kPoison);
  std::fill(l.static_smem.begin(), l.static_smem.end(), kPoison);
  for (Thread& t : l.threads) make_ready(l, t);
  for (auto& p : l.pending) p.clear();
  LF_TSAN_RELEASE(&l.block_start);
  l.live = static_cast<unsigned>(l.threads.size());
  l.at_barrier = 0;
  while (!l.ready.empty()) {
    const unsigned id = l.cfg.schedule == Schedule::kForward   ? l.ready.lowest()
                        : l.cfg.schedule == Schedule::kReverse ? l.ready.highest()
                                                               : l.ready.random(rng);
    l.ready.erase(id);  // re-inserted if it yields ready (the last lane of a collective)
    Thread& t = l.threads[id];
    if (!run_thread(l, t)) return;
    // The last thread to end may complete a barrier the others wait at.
    if (t.wait == Wait::kExited && l.at_barrier > 0 && l.at_barrier == l.live) release_barrier(l);
  }
  LF_TSAN_ACQUIRE(&l.block_end);
  if (l.live > 0) l.error = prefix(l) + deadlock_report(l);
}

void destroy_state(Launch& l) {
  for (Thread& t : l.threads) {
    for (const StateSlot& s : t.state) s.destroy(s.obj);
    t.state.clear();
  }
}

}  // namespace

void launch(const LaunchConfig& cfg, void (*body)(void*), void* ctx) {
  const unsigned n = cfg.block.x * cfg.block.y * cfg.block.z;
  if (n == 0 || n > ReadySet::kMaxThreads || cfg.grid.x * cfg.grid.y * cfg.grid.z == 0) {
    throw Error("SIMT emulator: kernel '" + std::string(cfg.kernel) + "': invalid launch geometry");
  }
  if (g_launch) throw Error("SIMT emulator: a launch from inside a kernel (dynamic parallelism) is not supported");
  Launch l;
  l.cfg = cfg;
  l.body = body;
  l.ctx = ctx;
  l.dynamic_smem.resize(cfg.dynamic_smem);
  l.pending.resize((n + kWarp - 1) / kWarp);
  while (g_fibers.size() < n) g_fibers.push_back(std::make_unique<Fiber>());
  l.threads.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = l.threads[i];
    t.info.idx = {i % cfg.block.x, (i / cfg.block.x) % cfg.block.y, i / (cfg.block.x * cfg.block.y)};
    t.info.linear = i;
    t.info.lane = i % kWarp;
    t.info.warp = i / kWarp;
    t.fiber = g_fibers[i].get();
    t.fiber->reset(&thread_main, &l);
  }
  blockDim = cfg.block;
  gridDim = cfg.grid;
  std::mt19937_64 rng(cfg.seed);
  g_launch = &l;
  for (unsigned b : block_order(l, rng)) {
    blockIdx = {b % cfg.grid.x, (b / cfg.grid.x) % cfg.grid.y, b / (cfg.grid.x * cfg.grid.y)};
    run_block(l, rng);
    destroy_state(l);
    if (!l.error.empty()) break;
  }
  g_launch = nullptr;
  if (!l.error.empty()) throw Error(l.error);
}

const ThreadInfo& this_thread() {
  Launch& l = launch_state();
  return l.current->info;
}

// The fiber's frames are abandoned, not unwound: temporaries of the caller (its message) leak. Only
// on the error path, which ends the launch.
void fail(const std::string& what) {
  Launch& l = launch_state();
  l.error = prefix(l) + "thread " + dims(l.current->info.idx) + ": " + what;
  l.current->fiber->leave();
}

void syncthreads(std::source_location site) {
  Launch& l = launch_state();
  Thread& t = *l.current;
  if (l.at_barrier > 0) {
    const Thread& o = *l.barrier_first;
    if (o.site.line() != site.line() || std::strcmp(o.site.file_name(), site.file_name()) != 0) {
      fail("divergent __syncthreads: this thread arrived at " + where(site) + ", thread " + dims(o.info.idx) +
           " waits at " + where(o.site));
    }
  } else {
    l.barrier_first = &t;
  }
  t.wait = Wait::kBarrier;
  t.site = site;
  LF_TSAN_RELEASE(&l.barrier_sync);
  if (++l.at_barrier == l.live) release_barrier(l);
  switch_to_host(l);
  LF_TSAN_ACQUIRE(&l.barrier_sync);
}

unsigned char* dynamic_smem() { return launch_state().dynamic_smem.data(); }

unsigned char* static_smem(const void* site, size_t bytes, size_t align) {
  Launch& l = launch_state();
  for (const auto& [s, offset] : l.static_sites) {
    if (s == site) return l.static_smem.data() + offset;
  }
  // First use in this launch: carve it out. Every block sees the same address, poisoned at its start.
  if (l.static_smem.empty()) l.static_smem.assign(kStaticSmemBytes, kPoison);
  const size_t offset = (l.static_used + align - 1) / align * align;
  if (offset + bytes > kStaticSmemBytes) fail("static shared memory exceeds 48 KiB");
  l.static_used = offset + bytes;
  l.static_sites.emplace_back(site, offset);
  return l.static_smem.data() + offset;
}

void warp_collective_raw(unsigned mask, const CollectiveCall& call, const void* in, void* out,
                         std::source_location site) {
  Launch& l = launch_state();
  Thread& t = *l.current;
  const unsigned lane = t.info.lane, warp = t.info.warp;
  if (!(mask >> lane & 1u)) fail("warp collective at " + where(site) + " with mask " + mask_str(mask) +
                                 " called by lane " + std::to_string(lane) + ", which the mask does not name");
  const size_t base = static_cast<size_t>(warp) * kWarp;
  const unsigned exists = l.threads.size() - base >= kWarp ? ~0u : (1u << (l.threads.size() - base)) - 1;
  if (mask & ~exists) fail("warp collective at " + where(site) + " with mask " + mask_str(mask) +
                           " names lanes " + lanes_str(mask & ~exists) + " that the block does not have");
  std::vector<Pending>& pend = l.pending[warp];
  auto it = std::find_if(pend.begin(), pend.end(), [&](const Pending& p) { return p.mask & mask; });
  if (it == pend.end()) {
    it = pend.insert(pend.end(), Pending{mask, 0, call.op});
  } else if (it->mask != mask || it->op != call.op) {
    const Thread& other = l.threads[base + __builtin_ctz(it->arrived)];
    fail("warp collective at " + where(site) + " with mask " + mask_str(mask) + " meets lane " +
         std::to_string(other.info.lane) + " waiting at " + (it->op != call.op ? "another collective" : "the same one") +
         " (" + where(other.site) + ") with mask " + mask_str(it->mask) + ": every lane of a mask must call the "
         "same collective with the same mask");
  }
  t.mask = mask;
  t.in = in;
  t.out = out;
  t.site = site;
  t.wait = Wait::kCollective;
  it->arrived |= 1u << lane;
  LF_TSAN_RELEASE(&l.pending[warp]);
  if (it->arrived == mask) {
    const void* ins[kWarp] = {};
    void* outs[kWarp] = {};
    for (int i = 0; i < kWarp; ++i) {
      if (!(mask >> i & 1u)) continue;
      ins[i] = l.threads[base + i].in;
      outs[i] = l.threads[base + i].out;
      make_ready(l, l.threads[base + i]);
    }
    pend.erase(it);
    // The last lane to arrive computes for all, then yields like the others: every collective is a
    // point where the schedule may reorder the lanes.
    LF_TSAN_ACQUIRE(&l.pending[warp]);  // the other lanes' inputs
    call.compute(ins, outs, mask, call.arg);
    LF_TSAN_RELEASE(&l.pending[warp]);  // their outputs
  }
  switch_to_host(l);
  LF_TSAN_ACQUIRE(&l.pending[warp]);
}

void* find_thread_state(const void* key) {
  for (const StateSlot& s : launch_state().current->state) {
    if (s.key == key) return s.obj;
  }
  return nullptr;
}

void add_thread_state(const StateSlot& slot) { launch_state().current->state.push_back(slot); }

}  // namespace lf::emu
