// nvcc-only proof that the dialect's tensor-core and cp.async wrappers (simt/tensor_core.cuh,
// simt/cp_async.cuh) assemble for every target architecture: one kernel calls each of them. Nothing
// launches it; scripts/check_ptxas.py compiles it with the other .cu files (setup.py and CMake leave
// csrc/tests/ out of the extension), and scripts/check_sass.py looks for the tensor-core instructions
// in its SASS when a cuobjdump is available.
#include "simt/cp_async.cuh"
#include "simt/tensor_core.cuh"

namespace lavin_fast::probe {

// One warp: A (16x16) and B (16x16, K x N row-major) staged in shared memory by cp.async, fragments
// through every ldmatrix variant, products through mma. `out` gets 32 x 8 floats.
template <typename In>
LF_GLOBAL void LF_LAUNCH_BOUNDS(32) tensor_core_probe(const uint16_t* a, const uint16_t* b, float* out,
                                                      int b_valid_bytes) {
  uint16_t* sa = lf::dynamic_smem<uint16_t>();  // 16 x 16
  uint16_t* sb = sa + 256;                      // 16 x 16
  const int lane = lf::lane_id();
  lf::cp_async<16>(sa + 8 * lane, a + 8 * lane, 16);
  lf::cp_async_commit();
  lf::cp_async<8>(sb + 8 * lane, b + 8 * lane, 8);
  lf::cp_async<4>(sb + 8 * lane + 4, b + 8 * lane + 4, b_valid_bytes);  // zero-fill past the valid bytes
  lf::cp_async<4>(sb + 8 * lane + 6, b + 8 * lane + 6, 4);
  lf::cp_async_commit();
  lf::cp_async_wait<1>();
  lf::cp_async_wait<0>();
  lf::syncthreads();

  uint32_t fa[4], fb4[4], fb2[2], fb1a[1], fb1b[1], fa2[2], fb2t[2], fb1t[1];
  lf::ldmatrix_x4(fa, sa + 16 * (lane % 16) + 8 * (lane / 16));
  lf::ldmatrix_x4_trans(fb4, sb + 16 * (lane % 16) + 8 * (lane / 16));  // B for n 0-7 and 8-15
  lf::ldmatrix_x2_trans(fb2t, sb + 16 * (lane % 16));
  lf::ldmatrix_x2(fb2, sb + 16 * (lane % 8) + 8 * (lane / 8 % 2));     // B^T read as N x K
  lf::ldmatrix_x1(fb1a, sb + 16 * (lane % 8));
  lf::ldmatrix_x1(fb1b, sb + 16 * (lane % 8) + 8);
  lf::ldmatrix_x2(fa2, sa + 16 * (lane % 8));
  lf::ldmatrix_x1_trans(fb1t, sb + 16 * (lane % 8));

  float acc[4] = {0.f, 0.f, 0.f, 0.f}, acc2[4] = {0.f, 0.f, 0.f, 0.f};
  const uint32_t b_lo[2] = {fb4[0], fb4[1]}, b_hi[2] = {fb4[2], fb4[3]};
  const uint32_t b_x1[2] = {fb1a[0] ^ fb1t[0], fb1b[0]}, a_mixed[4] = {fa2[0], fa2[1], fa[2], fa[3]};
  lf::mma_m16n8k16<In>(acc, fa, b_lo, acc);
  lf::mma_m16n8k16<In>(acc, fa, fb2t, acc);
  lf::mma_m16n8k16<In>(acc2, fa, b_hi, acc2);
  lf::mma_m16n8k16<In>(acc2, a_mixed, fb2, acc2);
  lf::mma_m16n8k16<In>(acc2, fa, b_x1, acc2);
  LF_UNROLL
  for (int i = 0; i < 4; ++i) out[8 * lane + i] = acc[i], out[8 * lane + 4 + i] = acc2[i];
}

template LF_GLOBAL void tensor_core_probe<lf::bf16>(const uint16_t*, const uint16_t*, float*, int);
template LF_GLOBAL void tensor_core_probe<lf::fp16>(const uint16_t*, const uint16_t*, float*, int);

}  // namespace lavin_fast::probe
