#include "simt/selftest.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "simt/dialect.cuh"

namespace lf::emu {

// selftest_tensor_core.cpp
void mma_ldmatrix_cp_async_reproduce_a_matrix_product();
void cp_async_destination_is_poisoned_until_the_wait();

namespace {

constexpr Schedule kSchedules[] = {Schedule::kForward, Schedule::kReverse, Schedule::kRandom};

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

LaunchConfig config(const char* name, unsigned grid, unsigned block, size_t smem = 0,
                    Schedule schedule = Schedule::kForward, uint64_t seed = 1) {
  LaunchConfig c;
  c.kernel = name;
  c.grid = dim3(grid);
  c.block = dim3(block);
  c.dynamic_smem = smem;
  c.schedule = schedule;
  c.seed = seed;
  return c;
}

// Runs `stmt`, which must throw Error with `needle` in its message.
template <typename F>
void expect_error(F&& stmt, const std::string& needle) {
  try {
    stmt();
  } catch (const Error& e) {
    const std::string msg = e.what();
    check(msg.find(needle) != std::string::npos, "emulator error lacks '" + needle + "': " + msg);
    return;
  }
  throw std::runtime_error("the emulator did not report: " + needle);
}

// ---- races: each thread publishes its id, then reads its neighbour's ----

template <bool kBarrier>
LF_GLOBAL void neighbour_kernel(unsigned* out) {
  unsigned* s = lf::dynamic_smem<unsigned>();
  const unsigned t = threadIdx.x;
  s[t] = t + 1;
  if (kBarrier) lf::syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[(t + 1) % blockDim.x];
}

template <bool kBarrier>
std::vector<unsigned> neighbours(Schedule schedule) {
  constexpr unsigned kThreads = 96, kBlocks = 2;
  std::vector<unsigned> out(kThreads * kBlocks);
  launch(config("neighbour_kernel", kBlocks, kThreads, kThreads * sizeof(unsigned), schedule),
         &neighbour_kernel<kBarrier>, out.data());
  return out;
}

void missing_barrier_changes_results() {
  check(neighbours<false>(Schedule::kForward) != neighbours<false>(Schedule::kReverse),
        "a kernel without its barrier gave the same result under forward and reverse schedules");
}

void barrier_makes_results_schedule_independent() {
  const std::vector<unsigned> ref = neighbours<true>(Schedule::kForward);
  for (unsigned i = 0; i < ref.size(); ++i) check(ref[i] == (i % 96 + 1) % 96 + 1, "wrong neighbour value");
  for (Schedule s : kSchedules) check(neighbours<true>(s) == ref, "barrier kernel differs between schedules");
}

// Block sums over several rounds through shared memory with one barrier per round, the pattern of the
// norm kernels' group_sum. With one buffer, a warp that runs ahead rewrites its slot for the next round
// before slower warps read this round's: only a double buffer makes one barrier per round enough.
template <bool kDoubleBuffer>
LF_GLOBAL void rounds_kernel(float* out) {
  float* buf = lf::dynamic_smem<float>();  // 2 * warps
  const int warps = static_cast<int>(blockDim.x) / lf::kWarpSize;
  float acc = 0.f;
  for (int round = 0; round < 3; ++round) {
    float v = static_cast<float>(threadIdx.x + 100 * round);
    for (int off = 16; off > 0; off /= 2) v += lf::shfl_xor(lf::kFullMask, v, off);
    float* b = buf + (kDoubleBuffer ? (round & 1) * warps : 0);
    if (lf::lane_id() == 0) b[lf::warp_id()] = v;
    lf::syncthreads();
    for (int w = 0; w < warps; ++w) acc += b[w];
  }
  out[threadIdx.x] = acc;
}

template <bool kDoubleBuffer>
std::vector<float> rounds(Schedule schedule) {
  constexpr unsigned kThreads = 128;
  std::vector<float> out(kThreads);
  launch(config("rounds_kernel", 1, kThreads, 2 * 4 * sizeof(float), schedule), &rounds_kernel<kDoubleBuffer>,
         out.data());
  return out;
}

void warp_running_ahead_changes_results() {
  check(rounds<false>(Schedule::kForward) != rounds<false>(Schedule::kReverse),
        "a single-buffered reduction gave the same result under forward and reverse schedules");
  // 3 rounds of sum(t + 100 r) over 128 threads: 3 * 8128 + 128 * 100 * (0 + 1 + 2).
  for (Schedule sch : kSchedules) {
    for (float v : rounds<true>(sch)) check(v == 3 * 8128.f + 128 * 300.f, "double-buffered reduction");
  }
}

// ---- barriers ----

LF_GLOBAL void divergent_barrier_kernel() {
  if (threadIdx.x < 16) {
    lf::syncthreads();
  } else {
    lf::syncthreads();
  }
}

void divergent_barrier() { launch(config("divergent_barrier_kernel", 1, 64), &divergent_barrier_kernel); }

// CUDA counts only threads that have not exited: the others' barrier releases.
LF_GLOBAL void early_exit_kernel(unsigned* a, unsigned* b) {
  if (threadIdx.x >= 40) return;
  a[threadIdx.x] = 1;
  lf::syncthreads();
  b[threadIdx.x] = a[threadIdx.x] + a[(threadIdx.x + 1) % 40];
}

void barrier_ignores_exited_threads() {
  for (Schedule s : kSchedules) {
    std::vector<unsigned> a(40, 0), b(40, 0);
    launch(config("early_exit_kernel", 1, 64, 0, s), &early_exit_kernel, a.data(), b.data());
    for (unsigned v : b) check(v == 2, "barrier with exited threads did not order the phases");
  }
}

// ---- warp collectives ----

LF_GLOBAL void exited_lane_kernel(float* out) {
  if (lf::lane_id() == 5) return;
  out[threadIdx.x] = lf::shfl(lf::kFullMask, 1.f, 0);
}

void collective_naming_exited_lane() {
  float out[32];
  launch(config("exited_lane_kernel", 1, 32), &exited_lane_kernel, out);
}

LF_GLOBAL void mask_mismatch_kernel(float* out) {
  // Lanes 0-15 name lane 16, which calls with another mask: whichever arrives second sees the clash.
  const unsigned mask = lf::lane_id() < 16 ? 0x1ffffu : lf::kFullMask;
  out[threadIdx.x] = lf::shfl_xor(mask, 1.f, 1);
}

void collective_mask_mismatch() {
  float out[32];
  launch(config("mask_mismatch_kernel", 1, 32), &mask_mismatch_kernel, out);
}

LF_GLOBAL void outside_mask_kernel(float* out) {
  if (lf::lane_id() < 16) out[threadIdx.x] = lf::shfl_xor(0xffffu, 1.f, 16);
}

void shuffle_reading_outside_mask() {
  float out[32];
  launch(config("outside_mask_kernel", 1, 32), &outside_mask_kernel, out);
}

// The PTX ISA's shfl.sync pseudo-code, written independently of collectives.h's shfl_source: the
// c operand is what CUDA's __shfl_*_sync pass ((32 - width) << 8, plus clamp 0x1f except for up),
// and PTX reads b[4:0].
int ptx_shfl_source(ShflMode mode, int lane, int b, int width) {
  b &= 0x1f;
  const int c = ((32 - width) << 8) | (mode == ShflMode::kUp ? 0 : 0x1f);
  const int segmask = (c >> 8) & 0x1f;
  const int max_lane = (lane & segmask) | (c & 0x1f & ~segmask), min_lane = lane & segmask;
  int j;
  bool pval;
  switch (mode) {
    case ShflMode::kUp: j = lane - b; pval = j >= max_lane; break;
    case ShflMode::kDown: j = lane + b; pval = j <= max_lane; break;
    case ShflMode::kXor: j = lane ^ b; pval = j <= max_lane; break;
    default: j = min_lane | (b & 0x1f & ~segmask); pval = j <= max_lane; break;
  }
  return pval ? j : lane;
}

struct ShflArgs {
  int mode, width, b;
  bool per_lane_b;  // b + 3 * lane instead of b
};

template <typename T>
LF_GLOBAL void shuffle_kernel(ShflArgs a, T* out) {
  const int lane = lf::lane_id();
  const T v = static_cast<T>(1000 * (threadIdx.x / 32) + 7 * lane + 1);
  const int b = a.per_lane_b ? a.b + 3 * lane : a.b;
  T r;
  switch (static_cast<ShflMode>(a.mode)) {
    case ShflMode::kIdx: r = lf::shfl(lf::kFullMask, v, b, a.width); break;
    case ShflMode::kUp: r = lf::shfl_up(lf::kFullMask, v, static_cast<unsigned>(b), a.width); break;
    case ShflMode::kDown: r = lf::shfl_down(lf::kFullMask, v, static_cast<unsigned>(b), a.width); break;
    default: r = lf::shfl_xor(lf::kFullMask, v, b, a.width); break;
  }
  out[threadIdx.x] = r;
}

template <typename T>
void check_shuffles(ShflMode mode, int width, int b, bool per_lane_b) {
  T out[64];
  launch(config("shuffle_kernel", 1, 64), &shuffle_kernel<T>, ShflArgs{static_cast<int>(mode), width, b, per_lane_b},
         out);
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32, bl = per_lane_b ? b + 3 * lane : b;
    const int j = ptx_shfl_source(mode, lane, bl, width);
    const T want = static_cast<T>(1000 * (t / 32) + 7 * j + 1);
    check(out[t] == want, "shuffle mode " + std::to_string(static_cast<int>(mode)) + " width " +
                              std::to_string(width) + " b " + std::to_string(bl) + ": thread " + std::to_string(t) +
                              " got " + std::to_string(out[t]) + ", PTX says " + std::to_string(want));
  }
}

void shuffles_follow_ptx() {
  for (ShflMode mode : {ShflMode::kIdx, ShflMode::kUp, ShflMode::kDown, ShflMode::kXor}) {
    for (int width = 1; width <= 32; width *= 2) {
      for (int b = 0; b < 40; ++b) check_shuffles<float>(mode, width, b, false);
      check_shuffles<float>(mode, width, 5, true);
      check_shuffles<double>(mode, width, 3, false);  // 64-bit: two 32-bit shuffles on the GPU
    }
  }
}

LF_GLOBAL void vote_kernel(unsigned mask, unsigned* out) {
  const int lane = lf::lane_id();
  if (!(mask >> lane & 1u)) return;
  const bool pred = lane % 3 == 0;
  out[3 * lane] = lf::ballot(mask, pred);
  out[3 * lane + 1] = lf::any(mask, pred);
  out[3 * lane + 2] = lf::all(mask, lane < 32);
}

void votes_follow_cuda() {
  for (unsigned mask : {0xffffffffu, 0x0f0f0f0fu, 0x00000006u}) {
    unsigned out[96] = {};
    launch(config("vote_kernel", 1, 32), &vote_kernel, mask, out);
    unsigned want = 0;
    for (int l = 0; l < 32; l += 3) want |= (mask >> l & 1u) << l;
    for (int l = 0; l < 32; ++l) {
      if (!(mask >> l & 1u)) continue;
      check(out[3 * l] == want && out[3 * l + 1] == (want != 0) && out[3 * l + 2] == 1, "ballot / any / all");
    }
  }
}

// Lanes exchange through shared memory ordered by __syncwarp only.
LF_GLOBAL void syncwarp_kernel(unsigned* out) {
  unsigned* s = lf::dynamic_smem<unsigned>();
  s[threadIdx.x] = threadIdx.x;
  lf::syncwarp();
  out[threadIdx.x] = s[threadIdx.x ^ 1];
}

void syncwarp_orders_lanes() {
  for (Schedule sch : kSchedules) {
    unsigned out[64];
    launch(config("syncwarp_kernel", 1, 64, 64 * sizeof(unsigned), sch), &syncwarp_kernel, out);
    for (unsigned t = 0; t < 64; ++t) check(out[t] == (t ^ 1), "__syncwarp did not order the lanes");
  }
}

// The generic primitive directly: every lane gets the sum of all lanes' inputs plus its lane.
LF_GLOBAL void generic_collective_kernel(int* out) {
  const int lane = lf::lane_id();
  out[threadIdx.x] = warp_collective<int, int>(0xffffffffu, lane * lane, [](const int* all, unsigned, int* outs) {
    int sum = 0;
    for (int l = 0; l < 32; ++l) sum += all[l];
    for (int l = 0; l < 32; ++l) outs[l] = sum + l;
  });
}

void generic_warp_collective() {
  int out[64];
  launch(config("generic_collective_kernel", 1, 64), &generic_collective_kernel, out);
  for (int t = 0; t < 64; ++t) check(out[t] == 10416 + t % 32, "warp_collective result");
}

// ---- memory, state, atomics, conversions ----

// Reads shared memory before writing it: every block must see the poison, not the previous block's
// values.
LF_GLOBAL void poison_kernel(unsigned* out) {
  LF_SHARED_ARRAY(unsigned, stat, 32);
  unsigned* dyn = lf::dynamic_smem<unsigned>();
  const unsigned i = blockIdx.x * 32 + threadIdx.x;
  out[2 * i] = dyn[threadIdx.x];
  out[2 * i + 1] = stat[threadIdx.x];
  lf::syncthreads();
  dyn[threadIdx.x] = stat[threadIdx.x] = 7;
}

void shared_memory_is_poisoned_per_block() {
  std::vector<unsigned> out(2 * 3 * 32);
  launch(config("poison_kernel", 3, 32, 32 * sizeof(unsigned)), &poison_kernel, out.data());
  for (unsigned v : out) check(v == 0xffffffffu, "shared memory not poisoned at a block start");
}

LF_GLOBAL void state_kernel(int* out) {
  int& n = thread_state<int>();
  out[blockIdx.x * blockDim.x + threadIdx.x] = n;
  n += static_cast<int>(threadIdx.x) + 1;
  lf::syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] += thread_state<int>();
}

void thread_state_is_per_thread() {
  int out[2 * 40];
  launch(config("state_kernel", 2, 40), &state_kernel, out);
  for (int i = 0; i < 80; ++i) check(out[i] == i % 40 + 1, "per-thread state");
}

LF_GLOBAL void atomic_kernel(int* counter, int* olds) {
  olds[blockIdx.x * blockDim.x + threadIdx.x] = lf::atomic_add(counter, 1);
}

void atomics_return_old_values() {
  int counter = 0;
  std::vector<int> olds(3 * 50);
  launch(config("atomic_kernel", 3, 50, 0, Schedule::kRandom), &atomic_kernel, &counter, olds.data());
  std::vector<bool> seen(olds.size());
  for (int v : olds) seen.at(v) = true;
  check(counter == 150 && std::find(seen.begin(), seen.end(), false) == seen.end(), "atomicAdd");
}

LF_GLOBAL void throwing_kernel() {
  if (threadIdx.x == 3) throw std::runtime_error("boom");
}

void exception_in_a_thread() { launch(config("throwing_kernel", 1, 32), &throwing_kernel); }

void the_emulator_recovers_from_errors() {
  expect_error(&exception_in_a_thread, "kernel 'throwing_kernel' block (0,0,0)");
  expect_error(&divergent_barrier, "divergent");
  barrier_makes_results_schedule_independent();  // clean launches after failed ones
}

void conversions_round_to_nearest_even() {
  std::mt19937 rng(7);
  auto check_one = [](uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    const uint16_t b = lf::from_float<lf::bf16>(f).bits, h = lf::from_float<lf::fp16>(f).bits;
    const bool nan = f != f;
    const float bf = lf::to_float(lf::bf16{b}), hf = lf::to_float(lf::fp16{h});
    if (nan) {
      check(bf != bf && hf != hf, "NaN must stay NaN");
      return;
    }
    check(b == c10::BFloat16(f).x, "bf16 rounding of " + std::to_string(f));
    check(h == c10::Half(f).x, "fp16 rounding of " + std::to_string(f));
    check(bf == static_cast<float>(c10::BFloat16(f)) && hf == static_cast<float>(c10::Half(f)), "to_float");
  };
  // Every exponent with low mantissa patterns around the ties of both formats, then random values.
  for (uint32_t hi = 0; hi < 0x200; ++hi) {
    for (uint32_t lo : {0x0000u, 0x0001u, 0x0fffu, 0x1000u, 0x1001u, 0x7fffu, 0x8000u, 0x8001u, 0x17fffu, 0x18000u}) {
      check_one(hi << 23 | lo);
    }
  }
  for (int i = 0; i < 200000; ++i) check_one(rng());
}

const std::vector<SelfTest> kTests = {
    {"missing_barrier_changes_results", &missing_barrier_changes_results, nullptr},
    {"barrier_makes_results_schedule_independent", &barrier_makes_results_schedule_independent, nullptr},
    {"warp_running_ahead_changes_results", &warp_running_ahead_changes_results, nullptr},
    {"divergent_barrier", &divergent_barrier, "divergent __syncthreads"},
    {"barrier_ignores_exited_threads", &barrier_ignores_exited_threads, nullptr},
    {"collective_naming_exited_lane", &collective_naming_exited_lane, "names lanes 5 that exited"},
    {"collective_mask_mismatch", &collective_mask_mismatch, "with the same mask"},
    {"shuffle_reading_outside_mask", &shuffle_reading_outside_mask, "which its mask does not name"},
    {"exception_in_a_thread", &exception_in_a_thread, "thread (3,0,0): an exception escaped: boom"},
    {"the_emulator_recovers_from_errors", &the_emulator_recovers_from_errors, nullptr},
    {"shuffles_follow_ptx", &shuffles_follow_ptx, nullptr},
    {"votes_follow_cuda", &votes_follow_cuda, nullptr},
    {"syncwarp_orders_lanes", &syncwarp_orders_lanes, nullptr},
    {"generic_warp_collective", &generic_warp_collective, nullptr},
    {"shared_memory_is_poisoned_per_block", &shared_memory_is_poisoned_per_block, nullptr},
    {"thread_state_is_per_thread", &thread_state_is_per_thread, nullptr},
    {"atomics_return_old_values", &atomics_return_old_values, nullptr},
    {"conversions_round_to_nearest_even", &conversions_round_to_nearest_even, nullptr},
    {"mma_ldmatrix_cp_async_reproduce_a_matrix_product", &mma_ldmatrix_cp_async_reproduce_a_matrix_product,
     nullptr},
    {"cp_async_destination_is_poisoned_until_the_wait", &cp_async_destination_is_poisoned_until_the_wait,
     nullptr},
};

}  // namespace

const std::vector<SelfTest>& selftests() { return kTests; }

void run_selftest(const SelfTest& t) {
  if (t.expected_error) {
    expect_error(t.run, t.expected_error);
  } else {
    t.run();
  }
}

}  // namespace lf::emu
