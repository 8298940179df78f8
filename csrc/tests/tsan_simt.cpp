// The SIMT emulator under ThreadSanitizer (CMake -DLAVIN_FAST_TSAN=ON; CTest simt_tsan.clean and
// simt_tsan.racy): each emulated thread is a TSan fiber and barriers are release/acquire pairs, so
// TSan sees exactly the kernel's synchronisation. `clean` runs race-free kernels and must report
// nothing; `racy` drops a barrier and must be reported as a data race. No torch: only the emulator.
#include <cstdio>
#include <cstring>
#include <vector>

#include "simt/dialect.cuh"

namespace {

// Each thread publishes a value in shared memory and reads its neighbour's, then the block's warps
// exchange sums through shuffles and a second buffer.
template <bool kBarrier>
LF_GLOBAL void exchange_kernel(float* out) {
  float* s = lf::dynamic_smem<float>();
  const unsigned t = threadIdx.x;
  s[t] = static_cast<float>(t);
  if (kBarrier) lf::syncthreads();
  float v = s[(t + 1) % blockDim.x];
  for (int off = 16; off > 0; off /= 2) v += lf::shfl_xor(lf::kFullMask, v, off);
  out[blockIdx.x * blockDim.x + t] = v;
}

template <bool kBarrier>
void run(lf::emu::Schedule schedule) {
  constexpr unsigned kThreads = 64, kBlocks = 2;
  std::vector<float> out(kThreads * kBlocks);
  lf::emu::LaunchConfig cfg;
  cfg.kernel = "exchange_kernel";
  cfg.grid = dim3(kBlocks);
  cfg.block = dim3(kThreads);
  cfg.dynamic_smem = kThreads * sizeof(float);
  cfg.schedule = schedule;
  lf::emu::launch(cfg, &exchange_kernel<kBarrier>, out.data());
}

}  // namespace

int main(int argc, char** argv) {
  const bool racy = argc > 1 && std::strcmp(argv[1], "racy") == 0;
  for (auto s : {lf::emu::Schedule::kForward, lf::emu::Schedule::kReverse, lf::emu::Schedule::kRandom}) {
    racy ? run<false>(s) : run<true>(s);
  }
  std::printf("ran the %s kernel under 3 schedules\n", racy ? "racy" : "clean");
  return 0;
}
