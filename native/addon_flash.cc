// N-API surface of the FlashAttention kernels (flash.h). Arguments are checked here (types, lengths,
// cuSeqlens and block table) so that no kernel can read or write out of bounds; the messages of the
// mask checks match js/flash.ts (the TS overlay also validates before calling).
//   flashForward(q, k, v, o, lse, dims, cuSeqlens | null, table | null)
//   flashBackward(q, k, v, o, lse, dO, dq, dk, dv, dims, cuSeqlens | null, table | null)
// dims: Float64Array [B, H, Hkv, Tq, S, d, scale, causal (0/1), window, blockSize(, backward schedule:
// 0 by shape, 1 fused, 2 separate dQ pass -- the same bits either way; tests compare them)].
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "flash.h"

namespace tsf {
int active_isa_level();  // addon.cc: 0 scalar, 1 avx2, 2 avx512

namespace {

struct FlashCall {
  const Napi::CallbackInfo& info;
  const char* fn;
  std::string err;
  bool range = false;
  FlashCall(const Napi::CallbackInfo& i, const char* f) : info(i), fn(f) {}
  bool ok() const { return err.empty(); }
  void fail(const std::string& m, bool r) { if (err.empty()) { err = std::string(fn) + ": " + m; range = r; } }
  void* typed(size_t i, const char* name, napi_typedarray_type want, const char* tname, size_t* len) {
    if (!ok()) return nullptr;
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (i >= info.Length() || napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok || type != want) {
      fail(std::string(name) + " must be a" + tname, false);
      return nullptr;
    }
    *len = length;
    return data;
  }
  float* f32(size_t i, const char* name, double need) {
    size_t len = 0;
    float* p = static_cast<float*>(typed(i, name, napi_float32_array, " Float32Array", &len));
    if (ok() && (double)len < need) fail(std::string(name) + " is too short", true);
    return p;
  }
  bool absent(size_t i) { return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined(); }
  Napi::Value finish() {
    if (err.empty()) return info.Env().Undefined();
    if (range) Napi::RangeError::New(info.Env(), err).ThrowAsJavaScriptException();
    else Napi::TypeError::New(info.Env(), err).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
};

// Reads dims, the mask and q, k, v, o, lse (indices 0..4); iDims = index of dims.
bool read_common(FlashCall& c, size_t iDims, FlashParams* p) {
  size_t n = 0;
  const double* dm = static_cast<const double*>(c.typed(iDims, "dims", napi_float64_array, " Float64Array", &n));
  if (!c.ok()) return false;
  if (n < 10) { c.fail("dims must hold 10 numbers", true); return false; }
  const char* names[] = {"B", "H", "Hkv", "Tq", "S", "d"};
  long v[6];
  for (int i = 0; i < 6; ++i) {
    if (!(dm[i] >= 0) || dm[i] > 9.0e15 || std::floor(dm[i]) != dm[i]) { c.fail(std::string(names[i]) + " must be a non-negative integer", false); return false; }
    v[i] = (long)dm[i];
  }
  p->B = v[0]; p->H = v[1]; p->Hkv = v[2]; p->Tq = v[3]; p->S = v[4]; p->d = v[5];
  if (p->Hkv < 1 || p->H % p->Hkv != 0) { c.fail("the kv heads must divide the query heads", true); return false; }
  p->scale = (float)dm[6];
  p->causal = dm[7] != 0;
  if (!(dm[8] >= 0) || dm[8] > 9.0e15 || std::floor(dm[8]) != dm[8]) {
    c.fail("attention mask: window must be an integer >= 0 (0 = unlimited)", true);
    return false;
  }
  p->window = (long)dm[8];
  p->bwd_mode = n > 10 && (dm[10] == 1 || dm[10] == 2) ? (int)dm[10] : 0;
  const double nq = (double)p->B * p->H * p->Tq * p->d, nk = (double)p->B * p->Hkv * p->S * p->d;
  p->q = c.f32(0, "q", nq);
  p->k = c.f32(1, "k", nk);
  p->v = c.f32(2, "v", nk);
  p->o = c.f32(3, "o", nq);
  p->lse = c.f32(4, "lse", (double)p->B * p->H * p->Tq);
  if (!c.ok()) return false;
  const size_t iCu = iDims + 1, iTab = iDims + 2;
  if (!c.absent(iCu)) {
    size_t len = 0;
    const int32_t* cu = static_cast<const int32_t*>(c.typed(iCu, "cuSeqlens", napi_int32_array, "n Int32Array", &len));
    if (!c.ok()) return false;
    if (p->Tq != p->S) { c.fail("attention mask: cuSeqlens needs as many queries as keys (packed self-attention)", true); return false; }
    bool good = len >= 2 && cu[0] == 0 && cu[len - 1] == p->S;
    for (size_t i = 1; good && i < len; ++i) good = cu[i] >= cu[i - 1];
    if (!good) { c.fail("attention mask: cuSeqlens must rise from 0 to the sequence length " + std::to_string(p->S), true); return false; }
    p->cu = cu;
    p->ncu = (long)len;
  }
  if (!c.absent(iTab)) {
    size_t len = 0;
    const uint8_t* t = static_cast<const uint8_t*>(c.typed(iTab, "blockMask table", napi_uint8_array, " Uint8Array", &len));
    if (!c.ok()) return false;
    const double bs = dm[9];
    if (!(bs >= 1) || bs > 9.0e15 || std::floor(bs) != bs) { c.fail("attention mask: blockSize must be a positive integer", true); return false; }
    p->bs = (long)bs;
    const long nb = (p->S + p->bs - 1) / p->bs;
    if ((double)len != (double)nb * nb) { c.fail("attention mask: block table has " + std::to_string(len) + " entries, expected " + std::to_string(nb) + " x " + std::to_string(nb), true); return false; }
    p->table = t;
  }
  return true;
}

Napi::Value FlashForward(const Napi::CallbackInfo& info) {
  FlashCall c(info, "flashForward");
  FlashParams p;
  if (read_common(c, 5, &p)) {
    if (active_isa_level() >= 2) flash_forward_avx512(p);
    else if (active_isa_level() >= 1) flash_forward_avx2(p);
    else flash_forward_scalar(p);
  }
  return c.finish();
}

Napi::Value FlashBackward(const Napi::CallbackInfo& info) {
  FlashCall c(info, "flashBackward");
  FlashParams p;
  if (read_common(c, 9, &p)) {
    const double nq = (double)p.B * p.H * p.Tq * p.d, nk = (double)p.B * p.Hkv * p.S * p.d;
    p.dO = c.f32(5, "dO", nq);
    p.dq = c.f32(6, "dq", nq);
    p.dk = c.f32(7, "dk", nk);
    p.dv = c.f32(8, "dv", nk);
    if (c.ok()) {
      if (active_isa_level() >= 2) flash_backward_avx512(p);
      else if (active_isa_level() >= 1) flash_backward_avx2(p);
      else flash_backward_scalar(p);
    }
  }
  return c.finish();
}

}  // namespace

void register_flash(Napi::Env env, Napi::Object exports) {
  exports.Set("flashForward", Napi::Function::New(env, FlashForward));
  exports.Set("flashBackward", Napi::Function::New(env, FlashBackward));
}

}  // namespace tsf
