// N-API surface of the FlashAttention kernels (attention/flash.h). Arguments are checked here (types, lengths,
// cuSeqlens and block table) so that no kernel can read or write out of bounds; the messages of the
// mask checks match src/backend/mask.ts (the TS overlay also validates before calling).
//   flashForward(q, k, v, o, lse, dims, cuSeqlens | null, table | null)
//   flashBackward(q, k, v, o, lse, dO, dq, dk, dv, dims, cuSeqlens | null, table | null)
// dims: Float64Array [B, H, Hkv, Tq, S, d, scale, causal (0/1), window, blockSize(, backward schedule:
// 0 by shape, 1 fused, 2 separate dQ pass -- the same bits either way; tests compare them), kvRows (0: S),
// lowp (1: the backward in float32 only, for autocast)].
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "args.h"
#include "attention/flash.h"
#include "runtime/isa.h"

namespace tsf {
namespace {

inline const FlashTable& F() { return isa_table(flash_scalar_table, flash_avx2_table, flash_avx512_table); }

// Reads dims, the mask and q, k, v, o, lse (indices 0..4); iDims = index of dims.
bool read_common(Call& c, size_t iDims, FlashParams* p) {
  size_t n = 0;
  const double* dm = c.f64(iDims, "dims", 0, &n);
  if (!c.ok()) return false;
  if (n < 10) { c.range_error("dims must hold 10 numbers"); return false; }
  const char* names[] = {"B", "H", "Hkv", "Tq", "S", "d"};
  long v[6];
  for (int i = 0; i < 6; ++i) {
    if (!(dm[i] >= 0) || dm[i] > 9.0e15 || std::floor(dm[i]) != dm[i]) { c.type_error(std::string(names[i]) + " must be a non-negative integer"); return false; }
    v[i] = (long)dm[i];
  }
  p->B = v[0]; p->H = v[1]; p->Hkv = v[2]; p->Tq = v[3]; p->S = v[4]; p->d = v[5];
  if (p->Hkv < 1 || p->H % p->Hkv != 0) { c.range_error("the kv heads must divide the query heads"); return false; }
  p->scale = (float)dm[6];
  p->causal = dm[7] != 0;
  if (!(dm[8] >= 0) || dm[8] > 9.0e15 || std::floor(dm[8]) != dm[8]) {
    c.range_error("attention mask: window must be an integer >= 0 (0 = unlimited)");
    return false;
  }
  p->window = (long)dm[8];
  p->bwd_mode = n > 10 && (dm[10] == 1 || dm[10] == 2) ? (int)dm[10] : 0;
  p->lowp = n > 12 && dm[12] != 0;  // backward without double products (autocast)
  // dims[11]: rows per (b, kv head) of k and v when they are read in place from a longer buffer (a KV cache)
  p->kv_rows = p->S;
  if (n > 11 && dm[11] != 0) {
    if (!(dm[11] >= (double)p->S) || dm[11] > 9.0e15 || std::floor(dm[11]) != dm[11]) { c.range_error("flash: kvRows must be an integer >= S (" + std::to_string(p->S) + ")"); return false; }
    p->kv_rows = (long)dm[11];
  }
  const double nq = (double)p->B * p->H * p->Tq * p->d;
  const double nk = p->B * p->Hkv == 0 ? 0.0 : ((double)(p->B * p->Hkv - 1) * p->kv_rows + p->S) * p->d;
  p->q = c.f32(0, "q", nq);
  p->k = c.f32(1, "k", nk);
  p->v = c.f32(2, "v", nk);
  p->o = c.f32(3, "o", nq);
  p->lse = c.f32(4, "lse", (double)p->B * p->H * p->Tq);
  if (!c.ok()) return false;
  const size_t iCu = iDims + 1, iTab = iDims + 2;
  if (!c.absent(iCu)) {
    size_t len = 0;
    const int32_t* cu = c.i32(iCu, "cuSeqlens", 0, &len);
    if (!c.ok()) return false;
    if (p->Tq != p->S) { c.range_error("attention mask: cuSeqlens needs as many queries as keys (packed self-attention)"); return false; }
    bool good = len >= 2 && cu[0] == 0 && cu[len - 1] == p->S;
    for (size_t i = 1; good && i < len; ++i) good = cu[i] >= cu[i - 1];
    if (!good) { c.range_error("attention mask: cuSeqlens must rise from 0 to the sequence length " + std::to_string(p->S)); return false; }
    p->cu = cu;
    p->ncu = (long)len;
  }
  if (!c.absent(iTab)) {
    size_t len = 0;
    const uint8_t* t = static_cast<const uint8_t*>(c.typed(iTab, "blockMask table", napi_uint8_array, " Uint8Array", 0, &len));
    if (!c.ok()) return false;
    const double bs = dm[9];
    if (!(bs >= 1) || bs > 9.0e15 || std::floor(bs) != bs) { c.range_error("attention mask: blockSize must be a positive integer"); return false; }
    p->bs = (long)bs;
    // all nb x nb blocks, or only the rows of the query blocks (queries are the last Tq of S positions)
    const long nb = (p->S + p->bs - 1) / p->bs, qb0 = p->Tq < p->S ? (p->S - p->Tq) / p->bs : 0;
    if ((double)len == (double)nb * nb) p->tqb0 = 0;
    else if ((double)len == (double)(nb - qb0) * nb) p->tqb0 = qb0;
    else {
      c.range_error("attention mask: block table has " + std::to_string(len) + " entries, expected " + std::to_string(nb) + " x " + std::to_string(nb) +
                    " (or " + std::to_string(nb - qb0) + " x " + std::to_string(nb) + ": the query blocks only)");
      return false;
    }
    p->table = t;
  }
  return true;
}

Napi::Value FlashForward(const Napi::CallbackInfo& info) {
  Call c(info, "flashForward");
  FlashParams p;
  if (read_common(c, 5, &p)) F().forward(p);
  return c.finish();
}

Napi::Value FlashBackward(const Napi::CallbackInfo& info) {
  Call c(info, "flashBackward");
  FlashParams p;
  if (read_common(c, 9, &p)) {
    if (p.kv_rows != p.S) { c.range_error("flash: kvRows (k and v read in place) is for the forward only"); return c.finish(); }
    const double nq = (double)p.B * p.H * p.Tq * p.d, nk = (double)p.B * p.Hkv * p.S * p.d;
    p.dO = c.f32(5, "dO", nq);
    p.dq = c.f32(6, "dq", nq);
    p.dk = c.f32(7, "dk", nk);
    p.dv = c.f32(8, "dv", nk);
    if (c.ok()) F().backward(p);
  }
  return c.finish();
}

}  // namespace

void register_flash(Napi::Env env, Napi::Object exports) {
  exports.Set("flashForward", Napi::Function::New(env, FlashForward));
  exports.Set("flashBackward", Napi::Function::New(env, FlashBackward));
}

}  // namespace tsf
