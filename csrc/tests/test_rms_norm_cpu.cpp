// The CPU kernels of the RMSNorm family, through the host API (norms/rms_norm_api.h) as the registered
// ops call it, against scalar double-precision loops. CTest runs this once per ISA variant
// (ATEN_CPU_CAPABILITY=default/avx2/avx512, see CMakeLists.txt).
//
// Each reference value comes with the sum of the absolute values of the terms that make it up; a
// result passes when |got - ref| <= tol * that sum, tol being about the unit roundoff of the output
// dtype (plus fp32 accumulation). This stays tight where there is no cancellation and does not flag
// the rounding of cancelling terms (grad_x of D = 1 is all cancellation).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/cpu_isa.h"
#include "norms/rms_norm_api.h"
#include "norms/rms_norm_cpu.h"
#include "tests/expect.h"

namespace {

namespace norms = lavin_fast::norms;
using Vec = std::vector<double>;

const norms::Backend kCpu{&lavin_fast::cpu::rms_norm_fwd, &lavin_fast::cpu::rms_norm_bwd,
                          /*validates_cu_seqlens=*/true};
constexpr double kEps = 1e-5;

Vec values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return Vec(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// ---- Reference ---------------------------------------------------------------------------------------

// y[r] = x[r] * rstd[r] * mult[seg(r)] + (shift[seg(r)] | residual[r] | 0)   (norms/norm_params.h)
struct Problem {
  int64_t rows = 0, dim = 0, num_seg = 1;
  std::vector<int64_t> seg;  // segment of each row
  Vec x;
  Vec mult, mult_mag;  // (num_seg, D), or (D,) broadcast, or empty for 1; mult_mag: |terms| of mult
  Vec shift;           // (num_seg, D) or empty
  Vec residual;        // (rows, D) or empty

  int64_t mi(int64_t r, int64_t j) const {
    return static_cast<int64_t>(mult.size()) == dim ? j : seg[r] * dim + j;
  }
  double m(int64_t r, int64_t j) const { return mult.empty() ? 1.0 : mult[mi(r, j)]; }
  double m_mag(int64_t r, int64_t j) const { return mult.empty() ? 1.0 : mult_mag[mi(r, j)]; }
};

struct Ref {
  Vec v, mag;
};

struct FwdRef {
  Ref y, rstd;
};

FwdRef ref_forward(const Problem& p) {
  const int64_t D = p.dim;
  FwdRef f{{Vec(p.rows * D), Vec(p.rows * D)}, {Vec(p.rows), Vec(p.rows)}};
  for (int64_t r = 0; r < p.rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += p.x[r * D + j] * p.x[r * D + j];
    const double rstd = 1.0 / std::sqrt(ss / D + kEps);
    f.rstd.v[r] = f.rstd.mag[r] = rstd;
    for (int64_t j = 0; j < D; ++j) {
      const double n = p.x[r * D + j] * rstd;
      double add = 0;
      if (!p.shift.empty()) add = p.shift[p.seg[r] * D + j];
      if (!p.residual.empty()) add = p.residual[r * D + j];
      f.y.v[r * D + j] = n * p.m(r, j) + add;
      f.y.mag[r * D + j] = std::abs(n) * p.m_mag(r, j) + std::abs(add);
    }
  }
  return f;
}

// n = x * rstd:  grad_x = rstd * (g*mult - n * mean(g*mult*n)),  grad_mult[s] = sum_{r in s} g*n,
// grad_shift[s] = sum_{r in s} g.  grad_mult has one row when mult is broadcast (rms_norm's weight).
struct BwdRef {
  Ref gx, gmult, gshift;
};

BwdRef ref_backward(const Problem& p, const Vec& g, const Vec& rstd) {
  const int64_t D = p.dim;
  const int64_t mult_rows = static_cast<int64_t>(p.mult.size()) == D ? 1 : p.num_seg;
  BwdRef b{{Vec(p.rows * D), Vec(p.rows * D)},
           {Vec(mult_rows * D), Vec(mult_rows * D)},
           {Vec(p.num_seg * D), Vec(p.num_seg * D)}};
  for (int64_t r = 0; r < p.rows; ++r) {
    double dot = 0, dot_mag = 0;
    for (int64_t j = 0; j < D; ++j) {
      const double n = p.x[r * D + j] * rstd[r];
      dot += g[r * D + j] * p.m(r, j) * n;
      dot_mag += std::abs(g[r * D + j] * n) * p.m_mag(r, j);
    }
    for (int64_t j = 0; j < D; ++j) {
      const int64_t i = r * D + j;
      const double n = p.x[i] * rstd[r];
      b.gx.v[i] = rstd[r] * (g[i] * p.m(r, j) - n * dot / D);
      b.gx.mag[i] = rstd[r] * (std::abs(g[i]) * p.m_mag(r, j) + std::abs(n) * dot_mag / D);
      const int64_t mi = (mult_rows == 1 ? 0 : p.seg[r]) * D + j, si = p.seg[r] * D + j;
      b.gmult.v[mi] += g[i] * n;
      b.gmult.mag[mi] += std::abs(g[i] * n);
      b.gshift.v[si] += g[i];
      b.gshift.mag[si] += std::abs(g[i]);
    }
  }
  return b;
}

// ---- Comparison --------------------------------------------------------------------------------------

double tol_for(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return 8e-3;  // ~2^-7: twice bf16's unit roundoff
    case at::kHalf: return 1e-3;      // ~2^-10: twice fp16's
    default: return 5e-6;             // fp32 accumulation over up to a few thousand terms
  }
}

// Largest error / allowed error seen per output dtype, printed at the end: how much margin tol has.
std::map<std::string, double> worst;

void expect_close(const std::string& what, const at::Tensor& got, at::IntArrayRef shape, const Ref& ref,
                  double tol) {
  // fp16 subnormals (< 6.1e-5) have a fixed spacing of 2^-24 instead of a relative one.
  const double atol = got.scalar_type() == at::kHalf ? 0x1p-24 : 1e-30;
  double& w = worst[c10::toString(got.scalar_type())];
  if (got.sizes() != shape) {
    lf_test::fail(__FILE__, __LINE__, what + ": shape " + lavin_fast::shape_str(got.sizes()) +
                                          ", expected " + lavin_fast::shape_str(shape));
    return;
  }
  const Vec g = values(got);
  const int64_t cols = got.dim() ? got.size(-1) : 1;
  int64_t bad = 0;
  std::ostringstream s;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - ref.v[i]), allowed = tol * ref.mag[i] + atol;
    w = std::max(w, err / allowed);
    if (!(err <= allowed)) {  // also catches NaN
      if (bad++ < 4)
        s << "\n    row " << i / cols << ", col " << i % cols << ": got " << g[i] << ", expected " << ref.v[i]
          << " (allowed error " << allowed << ")";
    }
  }
  if (bad) {
    lf_test::fail(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " of " + std::to_string(g.size()) +
                                          " elements differ" + s.str());
  }
}

// ---- Cases -------------------------------------------------------------------------------------------

// Packed layout: segment lengths with an empty and a length-1 segment; 300 rows, so parallel_for splits
// rows mid-segment for wide rows and the backward splits segments into several reduction blocks.
const std::vector<int32_t> kLengths{37, 0, 1, 250, 12};

std::vector<int32_t> cumsum(const std::vector<int32_t>& lengths) {
  std::vector<int32_t> cu{0};
  for (int32_t l : lengths) cu.push_back(cu.back() + l);
  return cu;
}

// Rows -> segments of a packed (cu) or padded (rows_per_segment) layout.
void set_segments(Problem& p, const std::vector<int32_t>* cu, int64_t rows_per_segment) {
  p.seg.assign(p.rows, 0);
  if (cu) {
    p.num_seg = static_cast<int64_t>(cu->size()) - 1;
    for (int64_t s = 0; s < p.num_seg; ++s)
      for (int32_t r = (*cu)[s]; r < (*cu)[s + 1]; ++r) p.seg[r] = s;
  } else {
    p.num_seg = p.rows / rows_per_segment;
    for (int64_t r = 0; r < p.rows; ++r) p.seg[r] = r / rows_per_segment;
  }
}

at::Tensor randn(at::IntArrayRef shape, at::ScalarType dtype, double scale = 1.0) {
  return (at::randn(shape) * scale).to(dtype);
}

struct Label {
  std::string base;
  std::string operator()(const char* what) const { return base + " " + what; }
};

Label label(const char* op, const char* layout, at::ScalarType dt, int64_t D) {
  return {std::string(op) + " [" + layout + ", " + c10::toString(dt) + ", D=" + std::to_string(D) + "]"};
}

// rms_norm: weight of x's dtype and contiguous 3-D x; no weight, x sliced from wider rows and an
// expanded (stride 0) grad_y; fp32 weight and permuted x (copied to rows by the host code).
void test_rms_norm(at::ScalarType dt, int64_t D) {
  const int64_t R = 300;
  const char* layouts[] = {"weight", "sliced x, expanded grad", "fp32 weight, permuted x"};
  for (int variant = 0; variant < 3; ++variant) {
    at::Tensor x, gy;
    std::optional<at::Tensor> w;
    if (variant == 0) {
      x = randn({3, R / 3, D}, dt);
      gy = randn({3, R / 3, D}, dt);
      w = randn({D}, dt);
    } else if (variant == 1) {
      x = randn({R, D + 5}, dt).slice(1, 2, 2 + D);
      gy = randn({D}, dt).expand({R, D});
    } else {
      x = randn({R / 3, 3, D}, dt).permute({1, 0, 2});
      gy = randn({3, R / 3, D}, dt);
      w = randn({D}, at::kFloat);
    }
    const Label L = label("rms_norm", layouts[variant], dt, D);
    Problem p;
    p.rows = R;
    p.dim = D;
    p.x = values(x);
    set_segments(p, nullptr, R);
    if (w) p.mult = p.mult_mag = values(*w);
    for (double& v : p.mult_mag) v = std::abs(v);

    const auto [y, rstd] = norms::rms_norm(kCpu, x, w, kEps);
    const FwdRef f = ref_forward(p);
    expect_close(L("y"), y, x.sizes(), f.y, tol_for(dt));
    expect_close(L("rstd"), rstd, x.sizes().slice(0, x.dim() - 1), f.rstd, tol_for(at::kFloat));

    const bool gw = w.has_value();
    const auto [gx, gwt] = norms::rms_norm_backward(kCpu, gy, x, w, rstd, gw);
    const BwdRef b = ref_backward(p, values(gy), f.rstd.v);
    expect_close(L("grad_x"), gx, x.sizes(), b.gx, tol_for(dt));
    if (gw) {
      expect_close(L("grad_weight"), gwt, {D}, b.gmult, tol_for(w->scalar_type()));
    } else {
      EXPECT_EQ(gwt.numel(), 0);
    }
  }
}

// rms_norm_modulate: packed with shift (both gradients), packed without shift (scale gradient only),
// padded (B, L, D) with shift (shift gradient only).
void test_modulate(at::ScalarType dt, int64_t D) {
  const std::vector<int32_t> cu = cumsum(kLengths);
  for (int variant = 0; variant < 3; ++variant) {
    const bool packed = variant < 2, with_shift = variant != 1;
    const int64_t R = packed ? cu.back() : 300, S = packed ? kLengths.size() : 3;
    const at::Tensor x = packed ? randn({R, D}, dt) : randn({S, R / S, D}, dt);
    const at::Tensor gy = randn(x.sizes(), dt);
    const at::Tensor scale = randn({S, D}, variant == 1 ? at::kFloat : dt, 0.5);
    const std::optional<at::Tensor> shift =
        with_shift ? std::optional<at::Tensor>(randn({S, D}, dt)) : std::nullopt;
    const std::optional<at::Tensor> cu_t =
        packed ? std::optional<at::Tensor>(at::tensor(cu, at::kInt)) : std::nullopt;
    const char* layouts[] = {"packed, shift", "packed, fp32 scale, no shift", "padded, shift"};
    const Label L = label("rms_norm_modulate", layouts[variant], dt, D);
    Problem p;
    p.rows = R;
    p.dim = D;
    p.x = values(x);
    set_segments(p, packed ? &cu : nullptr, R / S);
    p.mult = p.mult_mag = values(scale);
    for (size_t i = 0; i < p.mult.size(); ++i) {
      p.mult_mag[i] = 1 + std::abs(p.mult[i]);
      p.mult[i] += 1;
    }
    if (shift) p.shift = values(*shift);

    const auto [y, rstd] = norms::rms_norm_modulate(kCpu, x, scale, shift, cu_t, kEps);
    const FwdRef f = ref_forward(p);
    expect_close(L("y"), y, x.sizes(), f.y, tol_for(dt));
    expect_close(L("rstd"), rstd, x.sizes().slice(0, x.dim() - 1), f.rstd, tol_for(at::kFloat));

    const bool gs = variant != 2, gb = with_shift;
    const auto [gx, gscale, gshift] =
        norms::rms_norm_modulate_backward(kCpu, gy, x, scale, cu_t, rstd, gs, gb);
    const BwdRef b = ref_backward(p, values(gy), f.rstd.v);
    expect_close(L("grad_x"), gx, x.sizes(), b.gx, tol_for(dt));
    if (gs) expect_close(L("grad_scale"), gscale, {S, D}, b.gmult, tol_for(scale.scalar_type()));
    if (gb) expect_close(L("grad_shift"), gshift, {S, D}, b.gshift, tol_for(scale.scalar_type()));
    EXPECT_EQ(gscale.numel() == 0, !gs);
    EXPECT_EQ(gshift.numel() == 0, !gb);
  }
}

// gated_rms_residual: packed with tanh (gate gradient), padded with "none" (no gate gradient) and a
// sliced residual.
void test_gated(at::ScalarType dt, int64_t D) {
  const std::vector<int32_t> cu = cumsum(kLengths);
  for (bool packed : {true, false}) {
    const int64_t R = packed ? cu.back() : 300, S = packed ? kLengths.size() : 3;
    const at::Tensor y = packed ? randn({R, D}, dt) : randn({S, R / S, D}, dt);
    // padded: the residual is a slice of wider rows (its own row stride)
    const at::Tensor residual = packed ? randn({R, D}, dt) : randn({S, R / S, D + 3}, dt).slice(2, 1, 1 + D);
    const at::Tensor gout = randn(y.sizes(), dt);
    const at::Tensor gate = randn({S, D}, dt);
    const std::optional<at::Tensor> cu_t =
        packed ? std::optional<at::Tensor>(at::tensor(cu, at::kInt)) : std::nullopt;
    const char* act = packed ? "tanh" : "none";
    const Label L =
        label("gated_rms_residual", packed ? "packed, tanh" : "padded, none, sliced residual", dt, D);
    Problem p;
    p.rows = R;
    p.dim = D;
    p.x = values(y);
    set_segments(p, packed ? &cu : nullptr, R / S);
    const Vec gv = values(gate);
    p.mult = p.mult_mag = gv;
    for (size_t i = 0; i < gv.size(); ++i) {
      if (packed) p.mult[i] = std::tanh(gv[i]);
      p.mult_mag[i] = std::abs(p.mult[i]);
    }
    p.residual = values(residual);

    const auto [out, rstd] = norms::gated_rms_residual(kCpu, residual, y, gate, cu_t, kEps, act);
    const FwdRef f = ref_forward(p);
    expect_close(L("out"), out, y.sizes(), f.y, tol_for(dt));
    expect_close(L("rstd"), rstd, y.sizes().slice(0, y.dim() - 1), f.rstd, tol_for(at::kFloat));

    const bool gg = packed;
    const auto [gy, ggate] = norms::gated_rms_residual_backward(kCpu, gout, y, gate, cu_t, rstd, act, gg);
    BwdRef b = ref_backward(p, values(gout), f.rstd.v);
    expect_close(L("grad_y"), gy, y.sizes(), b.gx, tol_for(dt));
    if (gg) {
      // d tanh(g)/dg = 1 - tanh(g)^2, whose terms are 1 and tanh(g)^2
      for (size_t i = 0; i < b.gmult.v.size(); ++i) {
        const double t = p.mult[i];
        b.gmult.v[i] *= 1 - t * t;
        b.gmult.mag[i] *= 1 + t * t;
      }
      expect_close(L("grad_gate"), ggate, {S, D}, b.gmult, tol_for(dt));
    } else {
      EXPECT_EQ(ggate.numel(), 0);
    }
  }
}

// No rows at all: the kernels are not called, requested gradients are zeros.
void test_no_rows(at::ScalarType dt) {
  const at::Tensor x = randn({0, 8}, dt), scale = randn({2, 8}, dt), cu = at::zeros({3}, at::kInt);
  const auto [y, rstd] = norms::rms_norm_modulate(kCpu, x, scale, scale, cu, kEps);
  EXPECT_EQ(y.numel(), 0);
  const auto [gx, gs, gb] = norms::rms_norm_modulate_backward(kCpu, x, x, scale, cu, rstd, true, true);
  EXPECT(gs.sizes() == scale.sizes() && gs.eq(0).all().item<bool>());
  EXPECT(gb.sizes() == scale.sizes() && gb.eq(0).all().item<bool>());
}

// The variant under test: the one ATEN_CPU_CAPABILITY asks for. Returns false when this CPU cannot run
// it (ATen then picks a lower one, and so would we: the test would silently test another variant).
bool check_isa() {
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  std::string want = env ? env : "";
  for (char& c : want) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string aten = at::get_cpu_capability();
  const std::string ours = lavin_fast::cpu::cpu_isa_name(lavin_fast::cpu::cpu_isa());
  std::printf("ATEN_CPU_CAPABILITY=%s: ATen uses %s, lavin_fast uses %s\n", env ? env : "(unset)",
              aten.c_str(), ours.c_str());
  if (want.empty()) return true;
  const lavin_fast::cpu::CpuIsa isa = want == "AVX512" ? lavin_fast::cpu::CpuIsa::kAvx512
                                      : want == "AVX2" ? lavin_fast::cpu::CpuIsa::kAvx2
                                                       : lavin_fast::cpu::CpuIsa::kDefault;
  if (aten != want || !lavin_fast::cpu::cpu_supports(isa)) return false;
  EXPECT_EQ(ours, want);
  return true;
}

}  // namespace

int main() {
  if (!check_isa()) {
    std::printf("skipped: this CPU cannot run the requested instruction set\n");
    return 77;  // SKIP_RETURN_CODE in CMakeLists.txt
  }
  // More threads than most CI machines have cores, so parallel_for starts chunks mid-segment anywhere.
  at::set_num_threads(3);
  at::manual_seed(0);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t D : {1, 7, 32, 72, 2305}) {
      lf_test::run("rms_norm", [&] { test_rms_norm(dt, D); });
      lf_test::run("rms_norm_modulate", [&] { test_modulate(dt, D); });
      lf_test::run("gated_rms_residual", [&] { test_gated(dt, D); });
    }
    lf_test::run("no rows", [&] { test_no_rows(dt); });
  }
  for (const auto& [dtype, ratio] : worst)
    std::printf("%s outputs: largest error %.3f of the allowed one\n", dtype.c_str(), ratio);
  return lf_test::finish();
}
