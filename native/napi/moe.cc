// N-API surface of the fused mixture-of-experts inference step (Backend.moeFfn, src/backend/backend.ts
// MoeFfnArgs): the token rows are gathered by slot, W1 and W3 of every expert run as ONE grouped GEMM
// (2E groups over the gathered rows twice), the activation and gate product follow in place, W2 is a
// second grouped GEMM, and the rows are scattered back with their gates. Two thread-pool runs and one
// crossing from JS per layer, where the unfused step pays a dozen ops (a decoding step's cost is mostly
// that overhead: its products are GEMVs).
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "args.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"
#include "runtime/isa.h"

namespace tsf {
namespace {

inline const GemmTable& G() { return isa_table(gemm_scalar_table, gemm_avx2_table, gemm_avx512_table); }
inline const KernelTable& K() { return isa_table(kernels_scalar_table, kernels_avx2_table, kernels_avx512_table); }

// Scratch of the calling (JS) thread, kept between calls.
thread_local std::vector<float> tl_rows, tl_hidden, tl_out;
thread_local std::vector<int32_t> tl_offsets;

// moeFfn(x, y, d, f, tokens, offsets, gates, w1s, w3s | null, w2s, actCode)
Napi::Value MoeFfn(const Napi::CallbackInfo& info) {
  Call c(info, "moeFfn");
  if (info.Length() < 11) { c.type_error("expected 11 arguments"); return c.finish(); }
  size_t xLen = 0, yLen = 0, offLen = 0;
  const float* x = c.f32(0, "x", 0, &xLen);
  float* y = c.f32(1, "y", 0, &yLen);
  const long d = c.count(2, "d"), f = c.count(3, "f");
  const int32_t* off = c.i32(5, "offsets", 1, &offLen);
  const long act = c.count(10, "act");
  if (c.ok() && act >= U_COUNT) c.range_error("unknown activation op");
  if (!c.ok()) return c.finish();
  const long E = (long)offLen - 1;
  if (off[0] != 0) c.range_error("offsets must start at 0");
  for (long e = 0; e < E && c.ok(); ++e)
    if (off[e + 1] < off[e]) c.range_error("offsets must be non-decreasing");
  if (!c.ok()) return c.finish();
  const long S = off[E];
  const int32_t* tokens = c.i32(4, "tokens", (double)S);
  const float* gates = c.f32(6, "gates", (double)S);
  const bool gated = !c.absent(8);
  std::vector<float*> w1, w3, w2;
  c.f32_list(7, "w1", E, (double)f * d, w1);
  if (gated) c.f32_list(8, "w3", E, (double)f * d, w3);
  c.f32_list(9, "w2", E, (double)d * f, w2);
  for (long s = 0; s < S && c.ok(); ++s)
    if (tokens[s] < 0 || (double)(tokens[s] + 1) * d > (double)xLen || (double)(tokens[s] + 1) * d > (double)yLen)
      c.range_error("a token row is out of bounds of x or y");
  if (!c.ok() || S == 0) return c.finish();

  // the gathered rows, twice when gated: groups 0..E-1 read the first copy with W1, E..2E-1 the second with W3
  const long G2 = gated ? 2 * E : E, R = gated ? 2 * S : S;
  tl_rows.resize(R * d);
  for (long s = 0; s < S; ++s)
    for (long i = 0; i < d; ++i) tl_rows[s * d + i] = x[(long)tokens[s] * d + i];
  if (gated) std::copy(tl_rows.begin(), tl_rows.begin() + S * d, tl_rows.begin() + S * d);
  tl_offsets.resize(G2 + 1);
  for (long g = 0; g <= E; ++g) tl_offsets[g] = off[g];
  for (long g = 1; g <= E && gated; ++g) tl_offsets[E + g] = (int32_t)(S + off[g]);
  std::vector<float*> bs(w1);
  if (gated) bs.insert(bs.end(), w3.begin(), w3.end());
  tl_hidden.resize(R * f);
  GroupedParams p;
  p.mode = GROUP_ROWS; p.groups = G2; p.offsets = tl_offsets.data(); p.m = 0; p.n = f; p.k = d;
  p.a = tl_rows.data(); p.lda = d; p.bs = bs.data(); p.b = nullptr; p.ldb = d; p.transB = true;
  p.c = tl_hidden.data(); p.cs = nullptr; p.ldc = f;
  G().grouped(p);
  float* h = tl_hidden.data();
  K().unary((int)act, h, h, S * f, 0.0f, 0.0f);
  if (gated)
    for (long i = 0; i < S * f; ++i) h[i] *= h[S * f + i];
  // W2 over the activations
  tl_out.resize(S * d);
  p.groups = E; p.offsets = off; p.n = d; p.k = f; p.a = h; p.lda = f; p.bs = w2.data(); p.ldb = f;
  p.c = tl_out.data(); p.ldc = d;
  G().grouped(p);
  for (long s = 0; s < S; ++s) {
    const float gs = gates[s];
    float* yr = y + (long)tokens[s] * d;
    const float* o = tl_out.data() + s * d;
    for (long i = 0; i < d; ++i) yr[i] += gs * o[i];
  }
  return c.finish();
}

}  // namespace

void register_moe(Napi::Env env, Napi::Object exports) {
  exports.Set("moeFfn", Napi::Function::New(env, MoeFfn));
}

}  // namespace tsf
