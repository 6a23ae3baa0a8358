// N-API surface of the non-GEMM kernels (kernels/kernels.h); arguments are read and checked by Call
// (args.h). The messages of the index checks match the js reference kernels.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "args.h"
#include "kernels/kernels.h"
#include "runtime/isa.h"

namespace tsf {
namespace {

inline const KernelTable& K() { return isa_table(kernels_scalar_table, kernels_avx2_table, kernels_avx512_table); }

// unary(op, x, y, n, a, b)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Call c(info, "unary");
  const long op = c.count(0, "op"), n = c.count(3, "n");
  const float* x = c.f32(1, "x", n);
  float* y = c.f32(2, "y", n);
  const float a = (float)c.num(4, "a"), b = (float)c.num(5, "b");
  if (c.ok() && op >= U_COUNT) c.range_error("unknown op");
  if (c.ok()) K().unary((int)op, x, y, n, a, b);
  return c.finish();
}
// unaryBackward(op, x, y, gy, gx, n, a, b)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Call c(info, "unaryBackward");
  const long op = c.count(0, "op"), n = c.count(5, "n");
  const float* x = c.f32(1, "x", n);
  const float* y = c.f32(2, "y", n);
  const float* gy = c.f32(3, "gy", n);
  float* gx = c.f32(4, "gx", n);
  const float a = (float)c.num(6, "a"), b = (float)c.num(7, "b");
  if (c.ok() && op >= U_COUNT) c.range_error("unknown op");
  if (c.ok()) K().unary_backward((int)op, x, y, gy, gx, n, a, b);
  return c.finish();
}

// Checks that the strided view [off + idx . strides] over shape lies inside [0, len).
bool view_in_bounds(long off, int rank, const long* shape, const long* strides, size_t len) {
  double lo = (double)off, hi = (double)off;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 0) return true;  // empty: nothing is touched
    const double e = (double)(shape[d] - 1) * (double)strides[d];
    if (e < 0) lo += e; else hi += e;
  }
  return lo >= 0 && hi < (double)len;
}

// Reads rank, then dims = Float64Array [shape(rank), s1(rank), s2(rank)].
bool read_dims(Call& c, size_t iRank, size_t iDims, int* rank, long* shape, long* s1, long* s2) {
  const long r = c.count(iRank, "rank");
  if (!c.ok()) return false;
  if (r > kMaxRank) { c.range_error("rank is larger than 16"); return false; }
  const double* d = c.f64(iDims, "dims", 3.0 * r);
  if (!c.ok()) return false;
  for (long i = 0; i < r; ++i) {
    if (!(d[i] >= 0) || std::floor(d[i]) != d[i]) { c.type_error("shape must hold non-negative integers"); return false; }
    shape[i] = (long)d[i];
    s1[i] = (long)d[r + i];
    s2[i] = (long)d[2 * r + i];
  }
  *rank = (int)r;
  return true;
}

// binary(op, a, aOff, b, bOff, out, rank, dims)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Call c(info, "binary");
  int rank = 0;
  long shape[kMaxRank], as[kMaxRank], bs[kMaxRank];
  const long op = c.count(0, "op"), aOff = c.count(2, "aOff"), bOff = c.count(4, "bOff");
  if (!read_dims(c, 6, 7, &rank, shape, as, bs)) return c.finish();
  double n = 1;
  for (int d = 0; d < rank; ++d) n *= (double)shape[d];
  size_t la = 0, lb = 0;
  const float* a = c.f32(1, "a", 0, &la);
  const float* b = c.f32(3, "b", 0, &lb);
  float* out = c.f32(5, "out", n);
  if (c.ok() && op >= B_COUNT) c.range_error("unknown op");
  if (c.ok() && n > 0 && !view_in_bounds(aOff, rank, shape, as, la)) c.range_error("a is out of bounds");
  if (c.ok() && n > 0 && !view_in_bounds(bOff, rank, shape, bs, lb)) c.range_error("b is out of bounds");
  if (c.ok() && n > 0) K().binary((int)op, a + aOff, b + bOff, out, rank, shape, as, bs);
  return c.finish();
}

// stridedCopy(src, srcOff, dst, dstOff, rank, dims)
Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  Call c(info, "stridedCopy");
  int rank = 0;
  long shape[kMaxRank], ss[kMaxRank], ds[kMaxRank];
  const long so = c.count(1, "srcOff"), dO = c.count(3, "dstOff");
  if (!read_dims(c, 4, 5, &rank, shape, ss, ds)) return c.finish();
  double n = 1;
  for (int d = 0; d < rank; ++d) n *= (double)shape[d];
  size_t ls = 0, ld = 0;
  const float* s = c.f32(0, "src", 0, &ls);
  float* d = c.f32(2, "dst", 0, &ld);
  if (c.ok() && n > 0 && !view_in_bounds(so, rank, shape, ss, ls)) c.range_error("src is out of bounds");
  if (c.ok() && n > 0 && !view_in_bounds(dO, rank, shape, ds, ld)) c.range_error("dst is out of bounds");
  if (c.ok() && n > 0) K().strided_copy(s + so, d + dO, rank, shape, ss, ds);
  return c.finish();
}

// where(cond, a, b, out, n)
Napi::Value Where(const Napi::CallbackInfo& info) {
  Call c(info, "where");
  const long n = c.count(4, "n");
  const float* cd = c.f32(0, "cond", n);
  const float* a = c.f32(1, "a", n);
  const float* b = c.f32(2, "b", n);
  float* o = c.f32(3, "out", n);
  if (c.ok()) K().where(cd, a, b, o, n);
  return c.finish();
}

// reduce(op, x, outer, dim, inner, out)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Call c(info, "reduce");
  const long op = c.count(0, "op"), outer = c.count(2, "outer"), dim = c.count(3, "dim"), inner = c.count(4, "inner");
  const float* x = c.f32(1, "x", (double)outer * dim * inner);
  float* o = c.f32(5, "out", (double)outer * inner);
  if (c.ok() && op >= R_COUNT) c.range_error("unknown op");
  if (c.ok()) K().reduce((int)op, x, outer, dim, inner, o);
  return c.finish();
}

// cumsum(x, outer, dim, inner, out, reverse)
Napi::Value Cumsum(const Napi::CallbackInfo& info) {
  Call c(info, "cumsum");
  const long outer = c.count(1, "outer"), dim = c.count(2, "dim"), inner = c.count(3, "inner");
  const double n = (double)outer * dim * inner;
  const float* x = c.f32(0, "x", n);
  float* o = c.f32(4, "out", n);
  const bool rev = info[5].ToBoolean();
  if (c.ok()) K().cumsum(x, outer, dim, inner, o, rev);
  return c.finish();
}

// softmax(x, y, rows, cols, log) / softmaxBackward(y, gy, gx, rows, cols, log)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Call c(info, "softmax");
  const long rows = c.count(2, "rows"), cols = c.count(3, "cols");
  const double n = (double)rows * cols;
  const float* x = c.f32(0, "x", n);
  float* y = c.f32(1, "y", n);
  const bool lg = info[4].ToBoolean();
  if (c.ok()) K().softmax(x, y, rows, cols, lg);
  return c.finish();
}
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Call c(info, "softmaxBackward");
  const long rows = c.count(3, "rows"), cols = c.count(4, "cols");
  const double n = (double)rows * cols;
  const float* y = c.f32(0, "y", n);
  const float* gy = c.f32(1, "gy", n);
  float* gx = c.f32(2, "gx", n);
  const bool lg = info[5].ToBoolean();
  if (c.ok()) K().softmax_backward(y, gy, gx, rows, cols, lg);
  return c.finish();
}

// Same message as the js kernel (backend/js/softmax.ts checkTarget).
bool check_targets(Call& c, const int32_t* t, long rows, long cols, long ignore) {
  for (long r = 0; r < rows; ++r) {
    const long v = t[r];
    if (v == ignore) continue;
    if (v < 0 || v >= cols) {
      c.err = "cross_entropy: target " + std::to_string(v) + " at row " + std::to_string(r) +
              " is out of range [0, " + std::to_string(cols) + ")";
      c.range = true;
      return false;
    }
  }
  return true;
}

// crossEntropy(logits, targets, rows, cols, ignoreIndex, smoothing, loss, lse)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Call c(info, "crossEntropy");
  const long rows = c.count(2, "rows"), cols = c.count(3, "cols");
  const long ignore = c.integer(4, "ignoreIndex");
  const double sm = c.num(5, "smoothing");
  const float* x = c.f32(0, "logits", (double)rows * cols);
  const int32_t* t = c.i32(1, "targets", rows);
  float* loss = c.f32(6, "loss", rows);
  float* lse = c.f32(7, "lse", rows);
  if (c.ok() && check_targets(c, t, rows, cols, ignore)) K().cross_entropy(x, t, rows, cols, ignore, sm, loss, lse);
  return c.finish();
}
// crossEntropyBackward(logits, targets, lse, gLoss, rows, cols, ignoreIndex, smoothing, gLogits)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Call c(info, "crossEntropyBackward");
  const long rows = c.count(4, "rows"), cols = c.count(5, "cols");
  const long ignore = c.integer(6, "ignoreIndex");
  const double sm = c.num(7, "smoothing");
  const float* x = c.f32(0, "logits", (double)rows * cols);
  const int32_t* t = c.i32(1, "targets", rows);
  const float* lse = c.f32(2, "lse", rows);
  const float* gl = c.f32(3, "gLoss", rows);
  float* gx = c.f32(8, "gLogits", (double)rows * cols);
  if (c.ok() && check_targets(c, t, rows, cols, ignore))
    K().cross_entropy_backward(x, t, lse, gl, rows, cols, ignore, sm, gx);
  return c.finish();
}

// layerNorm(x, w, b, rows, cols, eps, y, mean, rstd)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Call c(info, "layerNorm");
  const long rows = c.count(3, "rows"), cols = c.count(4, "cols");
  const double eps = c.num(5, "eps"), n = (double)rows * cols;
  const float* x = c.f32(0, "x", n);
  const float* w = c.f32opt(1, "weight", cols);
  const float* b = c.f32opt(2, "bias", cols);
  float* y = c.f32(6, "y", n);
  float* mean = c.f32(7, "mean", rows);
  float* rstd = c.f32(8, "rstd", rows);
  if (c.ok()) K().layer_norm(x, w, b, rows, cols, eps, y, mean, rstd);
  return c.finish();
}
// layerNormBackward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Call c(info, "layerNormBackward");
  const long rows = c.count(5, "rows"), cols = c.count(6, "cols");
  const double n = (double)rows * cols;
  const float* x = c.f32(0, "x", n);
  const float* w = c.f32opt(1, "weight", cols);
  const float* mean = c.f32(2, "mean", rows);
  const float* rstd = c.f32(3, "rstd", rows);
  const float* gy = c.f32(4, "gy", n);
  float* gx = c.f32(7, "gx", n);
  float* gw = c.f32opt(8, "gw", cols);
  float* gb = c.f32opt(9, "gb", cols);
  if (c.ok()) K().layer_norm_backward(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
  return c.finish();
}
// rmsNorm(x, w, rows, cols, eps, y, rstd)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Call c(info, "rmsNorm");
  const long rows = c.count(2, "rows"), cols = c.count(3, "cols");
  const double eps = c.num(4, "eps"), n = (double)rows * cols;
  const float* x = c.f32(0, "x", n);
  const float* w = c.f32opt(1, "weight", cols);
  float* y = c.f32(5, "y", n);
  float* rstd = c.f32(6, "rstd", rows);
  if (c.ok()) K().rms_norm(x, w, rows, cols, eps, y, rstd);
  return c.finish();
}
// rmsNormBackward(x, w, rstd, gy, rows, cols, gx, gw)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  Call c(info, "rmsNormBackward");
  const long rows = c.count(4, "rows"), cols = c.count(5, "cols");
  const double n = (double)rows * cols;
  const float* x = c.f32(0, "x", n);
  const float* w = c.f32opt(1, "weight", cols);
  const float* rstd = c.f32(2, "rstd", rows);
  const float* gy = c.f32(3, "gy", n);
  float* gx = c.f32(6, "gx", n);
  float* gw = c.f32opt(7, "gw", cols);
  if (c.ok()) K().rms_norm_backward(x, w, rstd, gy, rows, cols, gx, gw);
  return c.finish();
}

// Same message as the js kernel (backend/js/index-ops.ts checkIndex).
bool check_index(Call& c, const int32_t* idx, long n, long dimIn) {
  for (long j = 0; j < n; ++j) {
    const long v = idx[j];
    if (v < 0 || v >= dimIn) {
      c.err = "index " + std::to_string(v) + " at position " + std::to_string(j) + " is out of range [0, " +
              std::to_string(dimIn) + ")";
      c.range = true;
      return false;
    }
  }
  return true;
}

// indexSelect(x, outer, dimIn, inner, idx, nIdx, out) / indexAdd(gOut, outer, dimIn, inner, idx, nIdx, gx)
Napi::Value IndexOp(const Napi::CallbackInfo& info, bool add) {
  Call c(info, add ? "indexAdd" : "indexSelect");
  const long outer = c.count(1, "outer"), dimIn = c.count(2, "dimIn"), inner = c.count(3, "inner"), nIdx = c.count(5, "nIdx");
  const double big = (double)outer * dimIn * inner, small = (double)outer * nIdx * inner;
  const float* src = c.f32(0, add ? "gOut" : "x", add ? small : big);
  const int32_t* idx = c.i32(4, "idx", nIdx);
  float* dst = c.f32(6, add ? "gx" : "out", add ? big : small);
  if (c.ok() && check_index(c, idx, nIdx, dimIn)) {
    if (add) K().index_add(src, outer, dimIn, inner, idx, nIdx, dst);
    else K().index_select(src, outer, dimIn, inner, idx, nIdx, dst);
  }
  return c.finish();
}
Napi::Value IndexSelect(const Napi::CallbackInfo& info) { return IndexOp(info, false); }
Napi::Value IndexAdd(const Napi::CallbackInfo& info) { return IndexOp(info, true); }

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Call c(info, "adamw");
  const long n = c.count(4, "n");
  float* p = c.f32(0, "param", n);
  const float* g = c.f32(1, "grad", n);
  float* m = c.f32(2, "m", n);
  float* v = c.f32(3, "v", n);
  const double lr = c.num(5, "lr"), b1 = c.num(6, "beta1"), b2 = c.num(7, "beta2"), eps = c.num(8, "eps"),
               wd = c.num(9, "weightDecay"), bc1 = c.num(10, "bc1"), bc2 = c.num(11, "bc2");
  if (c.ok()) K().adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
  return c.finish();
}

// opNames() -> { unary, binary, reduce }: the op names in code order (the TS side builds its codes
// from these and checks that every op of its kernel table is there).
Napi::Value OpNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto list = [&](std::initializer_list<const char*> names) {
    Napi::Array a = Napi::Array::New(env, names.size());
    uint32_t i = 0;
    for (const char* n : names) a.Set(i++, n);
    return a;
  };
  Napi::Object o = Napi::Object::New(env);
#define TSF_NAME(code, name, ...) name,
  o.Set("unary", list({TSF_UNARY_OPS(TSF_NAME)}));
  o.Set("binary", list({TSF_BINARY_OPS(TSF_NAME)}));
  o.Set("reduce", list({TSF_REDUCE_OPS(TSF_NAME)}));
#undef TSF_NAME
  return o;
}

}  // namespace

void register_kernels(Napi::Env env, Napi::Object exports) {
  exports.Set("opNames", Napi::Function::New(env, OpNames));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("stridedCopy", Napi::Function::New(env, StridedCopy));
  exports.Set("where", Napi::Function::New(env, Where));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("cumsum", Napi::Function::New(env, Cumsum));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward));
  exports.Set("indexSelect", Napi::Function::New(env, IndexSelect));
  exports.Set("indexAdd", Napi::Function::New(env, IndexAdd));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
}

}  // namespace tsf
