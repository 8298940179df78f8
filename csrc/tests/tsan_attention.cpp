// The attention kernels (attention_{fwd,bwd}_kernel.cuh) under ThreadSanitizer fibers (CMake
// -DLAVIN_FAST_TSAN=ON, CTest attention_tsan): the forward with packed GQA heads and every mask (so
// tiles are skipped, full and partial), the backward with atomic dQ and in deterministic mode, at
// head dim 72, under two schedules. TSan must report nothing (a shared-memory tile
// rewritten while another warp still reads it, a cp.async destination read early); the values are
// pytest's job (tests/test_attention_simt.py). Torch-free: the simt launcher and the emulator only.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/attention_simt_launch.h"

namespace {

using lavin_fast::ElemType;

std::vector<uint16_t> values(size_t n, uint32_t seed) {
  std::vector<uint16_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    out[i] = static_cast<uint16_t>(0x3e00 + (seed >> 24));  // bf16 in [0.125, 0.5)
  }
  return out;
}

std::vector<int32_t> cumsum(const std::vector<int32_t>& lengths) {
  std::vector<int32_t> cu(lengths.size() + 1, 0);
  for (size_t i = 0; i < lengths.size(); ++i) cu[i + 1] = cu[i] + lengths[i];
  return cu;
}

void run(int D) {
  const std::vector<int32_t> lq = {70, 1, 40}, lk = {50, 3, 200};  // segment 2: 4 key tiles
  const int H = 2, H_kv = 1, S = 3, max_q = 70, max_k = 200, tile_q = 32, tile_k = 48;
  const std::vector<int32_t> cu_q = cumsum(lq), cu_k = cumsum(lk);
  const int64_t tq = cu_q.back(), tk = cu_k.back();
  std::vector<uint16_t> q = values(tq * H * D, 1), k = values(tk * H_kv * D, 2), v = values(tk * H_kv * D, 3);
  std::vector<uint16_t> g = values(tq * H * D, 4), out(tq * H * D), gq(q.size()), gk(k.size()), gv(v.size());
  std::vector<float> lse(H * tq);
  std::vector<int32_t> fq(tq), fk(tk);
  for (int64_t i = 0; i < tq; ++i) fq[i] = static_cast<int32_t>(i % 70) / 24;
  for (int64_t i = 0; i < tk; ++i) fk[i] = static_cast<int32_t>(i % 50) / 24;
  const int nq = (max_q + tile_q - 1) / tile_q, nk = (max_k + tile_k - 1) / tile_k;
  std::vector<uint8_t> tiles(S * nq * nk, 1);
  tiles[1] = 0;  // segment 0: query tile 0 does not see key tile 1

  lavin_fast::VarlenAttentionBwdParams p;
  p.dtype = ElemType::kBFloat16;
  p.num_segments = S;
  p.total_q = tq;
  p.total_k = tk;
  p.max_seqlen_q = max_q;
  p.max_seqlen_k = max_k;
  p.num_heads = H;
  p.num_kv_heads = H_kv;
  p.head_dim = D;
  p.softmax_scale = 0.125f;
  p.cu_seqlens_q = cu_q.data();
  p.cu_seqlens_k = cu_k.data();
  p.mask.causal = true;
  p.mask.frame_q = fq.data();
  p.mask.frame_k = fk.data();
  p.mask.tile_mask = tiles.data();
  p.mask.tile_q = tile_q;
  p.mask.tile_k = tile_k;
  p.mask.n_tiles_q = nq;
  p.mask.n_tiles_k = nk;
  p.q = q.data();
  p.q_row_stride = H * D;
  p.q_head_stride = D;
  p.k = k.data();
  p.k_row_stride = H_kv * D;
  p.k_head_stride = D;
  p.v = v.data();
  p.v_row_stride = H_kv * D;
  p.v_head_stride = D;
  p.out = out.data();
  p.lse = lse.data();
  p.grad_out = g.data();
  p.grad_out_row_stride = H * D;
  p.grad_out_head_stride = D;
  p.grad_q = gq.data();
  p.grad_k = gk.data();
  p.grad_v = gv.data();
  // TSan sees races through happens-before, whatever the order: two schedules keep the test ~15 s.
  for (auto s : {lf::emu::Schedule::kForward, lf::emu::Schedule::kRandom}) {
    bool ok = lavin_fast::simt::attention_fwd(p, s, 7);
    for (bool det : {false, true}) {
      p.deterministic = det;
      std::vector<float> ws(lavin_fast::attention_kernels::bwd_workspace_floats_for(p), 0.f);
      p.workspace = ws.data();
      p.workspace_floats = static_cast<int64_t>(ws.size());
      ok = ok && lavin_fast::simt::attention_bwd(p, s, 7);
    }
    if (!ok) {
      std::fprintf(stderr, "the launcher rejected D = %d\n", D);
      std::exit(1);
    }
  }
}

}  // namespace

int main() {
  run(72);
  std::printf("attention: forward, backward (atomic, deterministic), D = 72, 2 schedules\n");
  return 0;
}
