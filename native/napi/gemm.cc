// N-API surface of the GEMM kernels (gemm/gemm.h) and the bf16 conversions; arguments are read and
// checked by Call (args.h).
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "gemm/gemm.h"
#include "runtime/isa.h"
#include "runtime/pool.h"

namespace tsf {
namespace {

inline const GemmTable& G() { return isa_table(gemm_scalar_table, gemm_avx2_table, gemm_avx512_table); }

// Largest element index touched by a [batch] x [rows x cols] strided operand, or -1 if empty.
double last_index(long off, long batch, long stride, long rows, long cols, long ld) {
  if (batch == 0 || rows == 0 || cols == 0) return -1;
  return (double)off + (double)(batch - 1) * stride + (double)(rows - 1) * ld + (cols - 1);
}

// gemm(batch, m, n, k, a, aOff, lda, strideA, transA, b, bOff, ldb, strideB, transB,
//      c, cOff, ldc, strideC, alpha, beta[, bias, biasOff]) -- fp32: a/b Float32Array, bias null or
//      a Float32Array of n values from biasOff (batch 1 only); bf16: a/b Uint16Array, then [mode]
//      after biasOff.
Napi::Value Gemm(const Napi::CallbackInfo& info, bool bf16) {
  Call c(info, bf16 ? "gemmBf16" : "gemm");
  if (info.Length() < 20) { c.type_error("expected 20 arguments"); return c.finish(); }
  const long batch = c.count(0, "batch"), m = c.count(1, "m"), n = c.count(2, "n"), k = c.count(3, "k");
  const long aOff = c.count(5, "aOff"), lda = c.count(6, "lda"), sA = c.count(7, "strideA");
  const long bOff = c.count(10, "bOff"), ldb = c.count(11, "ldb"), sB = c.count(12, "strideB");
  const long cOff = c.count(15, "cOff"), ldc = c.count(16, "ldc"), sC = c.count(17, "strideC");
  const bool tA = c.flag(8), tB = c.flag(13);
  const float alpha = (float)c.num(18, "alpha"), beta = (float)c.num(19, "beta");
  size_t aLen = 0, bLen = 0, cLen = 0;
  const void* a = bf16 ? (const void*)c.u16(4, "a", 0, &aLen) : (const void*)c.f32(4, "a", 0, &aLen);
  const void* b = bf16 ? (const void*)c.u16(9, "b", 0, &bLen) : (const void*)c.f32(9, "b", 0, &bLen);
  float* cp = c.f32(14, "c", 0, &cLen);
  if (!c.ok()) return c.finish();
  const long ar = tA ? k : m, ac = tA ? m : k, br = tB ? n : k, bc = tB ? k : n;
  if ((ar > 1 && lda < ac) || (br > 1 && ldb < bc) || (m > 1 && ldc < n))
    c.range_error("a leading dimension is smaller than the stored row length");
  else if (last_index(aOff, batch, sA, ar, ac, lda) >= (double)aLen) c.range_error("A is out of bounds");
  else if (last_index(bOff, batch, sB, br, bc, ldb) >= (double)bLen) c.range_error("B is out of bounds");
  else if (last_index(cOff, batch, sC, m, n, ldc) >= (double)cLen) c.range_error("C is out of bounds");
  if (!c.ok()) return c.finish();
  GemmParams p;
  p.batch = batch; p.m = m; p.n = n; p.k = k;
  p.lda = lda; p.strideA = sA; p.transA = tA;
  p.ldb = ldb; p.strideB = sB; p.transB = tB;
  p.c = cp + cOff; p.ldc = ldc; p.strideC = sC;
  p.alpha = alpha; p.beta = beta;
  if (info.Length() > 20 && !c.absent(20)) {
    size_t biasLen = 0;
    const float* bias = c.f32(20, "bias", 0, &biasLen);
    const long biasOff = info.Length() < 22 ? -1 : c.count(21, "biasOff");
    if (c.ok() && biasOff < 0) c.type_error("biasOff must be a non-negative integer");
    if (c.ok() && batch > 1) c.range_error("a bias needs batch 1");
    if (c.ok() && n > 0 && (double)biasOff + n > (double)biasLen) c.range_error("bias is out of bounds");
    if (!c.ok()) return c.finish();
    p.bias = bias + biasOff;
  }
  if (!bf16) {
    p.kind = KIND_F32;
    p.a = static_cast<const float*>(a) + aOff;
    p.b = static_cast<const float*>(b) + bOff;
    G().gemm(p);
    return c.finish();
  }
  p.a = static_cast<const uint16_t*>(a) + aOff;
  p.b = static_cast<const uint16_t*>(b) + bOff;
  const std::string mode = info.Length() > 22 && info[22].IsString() ? info[22].As<Napi::String>().Utf8Value() : "auto";
  const bool hw = active_isa_level() == ISA_AVX512 && cpu().bf16;
  if (mode == "pairs") {  // force the vdpbf16ps layout (emulated on AVX2): used by tests
    p.kind = KIND_BF16_PAIRS;
    if (hw) gemm_avx512bf16(p);
    else if (active_isa_level() >= ISA_AVX2) gemm_avx2(p);
    else c.type_error("mode 'pairs' needs AVX2 or AVX512_BF16");
  } else if (hw) {
    p.kind = KIND_BF16_PAIRS;
    gemm_avx512bf16(p);
  } else {
    p.kind = KIND_BF16;
    G().gemm(p);
  }
  return c.finish();
}

Napi::Value GemmF32(const Napi::CallbackInfo& info) { return Gemm(info, false); }
Napi::Value GemmBf16(const Napi::CallbackInfo& info) { return Gemm(info, true); }

// toBf16(src: Float32Array, dst: Uint16Array) / fromBf16(src: Uint16Array, dst: Float32Array)
struct ConvertJob { bool to; const void* src; void* dst; long n; };
void convert_task(void* vc, int tid, int nt) {  // contiguous slices of whole cache lines of dst
  const ConvertJob& j = *static_cast<const ConvertJob*>(vc);
  const long per = ((j.n + nt - 1) / nt + 31) / 32 * 32, a = tid * per, b = a + per < j.n ? a + per : j.n;
  if (a >= b) return;
  if (j.to) G().to_bf16(static_cast<const float*>(j.src) + a, static_cast<uint16_t*>(j.dst) + a, b - a);
  else G().from_bf16(static_cast<const uint16_t*>(j.src) + a, static_cast<float*>(j.dst) + a, b - a);
}
Napi::Value Convert(const Napi::CallbackInfo& info, bool to) {
  Call c(info, to ? "toBf16" : "fromBf16");
  size_t n = 0, dn = 0;
  void* src = to ? (void*)c.f32(0, "src", 0, &n) : (void*)c.u16(0, "src", 0, &n);
  void* dst = to ? (void*)c.u16(1, "dst", 0, &dn) : (void*)c.f32(1, "dst", 0, &dn);
  if (c.ok() && dn < n) c.range_error("dst is shorter than src");
  if (!c.ok()) return c.finish();
  ConvertJob job{to, src, dst, (long)n};
  // a conversion streams memory: one thread alone does not draw the bandwidth of two
  pool_run(n >= 65536 ? pool_threads() : 1, convert_task, &job);
  return c.finish();
}
Napi::Value ToBf16(const Napi::CallbackInfo& info) { return Convert(info, true); }
Napi::Value FromBf16(const Napi::CallbackInfo& info) { return Convert(info, false); }

// gemmGrouped(mode, offsets, m, n, k, a, lda, bs | b, ldb, transB, c | cs, ldc): see gemm.h
// GroupedParams; mode 0 = GROUP_ROWS (bs and c), 1 = GROUP_K (b and cs).
Napi::Value GemmGrouped(const Napi::CallbackInfo& info) {
  Call c(info, "gemmGrouped");
  if (info.Length() < 12) { c.type_error("expected 12 arguments"); return c.finish(); }
  const long mode = c.count(0, "mode");
  size_t offLen = 0;
  const int32_t* off = c.i32(1, "offsets", 1, &offLen);
  const long m = c.count(2, "m"), n = c.count(3, "n"), k = c.count(4, "k");
  const long lda = c.count(6, "lda"), ldb = c.count(8, "ldb"), ldc = c.count(11, "ldc");
  const bool tB = c.flag(9);
  if (!c.ok()) return c.finish();
  if (mode > 1) { c.range_error("mode must be 0 (rows) or 1 (k)"); return c.finish(); }
  const long ng = (long)offLen - 1;
  for (long g = 0; g < ng && c.ok(); ++g)
    if (off[g] < 0 || off[g + 1] < off[g]) c.range_error("offsets must be non-negative and non-decreasing");
  if (!c.ok()) return c.finish();
  const double rows = off[ng];
  // element count of a stored [r, cols] matrix with row stride ld (0 when r == 0)
  auto need = [](double r, long cols, long ld) { return r > 0 ? (r - 1) * ld + cols : 0.0; };
  GroupedParams p;
  p.mode = (int)mode; p.groups = ng; p.offsets = off; p.m = m; p.n = n; p.k = k;
  p.lda = lda; p.ldb = ldb; p.ldc = ldc; p.transB = tB;
  std::vector<float*> list;
  if (mode == GROUP_ROWS) {
    if (lda < k || ldc < n || (tB ? ldb < k : ldb < n)) { c.range_error("a leading dimension is smaller than the stored row length"); return c.finish(); }
    p.a = c.f32(5, "a", need(rows, k, lda));
    c.f32_list(7, "bs", ng, tB ? need(n, k, ldb) : need(k, n, ldb), list);
    p.c = c.f32(10, "c", need(rows, n, ldc));
    p.bs = list.data(); p.b = nullptr; p.cs = nullptr;
  } else {
    if (lda < m || ldb < n || ldc < n) { c.range_error("a leading dimension is smaller than the stored row length"); return c.finish(); }
    p.a = c.f32(5, "a", need(rows, m, lda));
    p.b = c.f32(7, "b", need(rows, n, ldb));
    c.f32_list(10, "cs", ng, need(m, n, ldc), list);
    p.cs = list.data(); p.bs = nullptr; p.c = nullptr;
  }
  if (!c.ok()) return c.finish();
  G().grouped(p);
  return c.finish();
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmGrouped", Napi::Function::New(env, GemmGrouped));
  exports.Set("gemm", Napi::Function::New(env, GemmF32));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16));
  exports.Set("toBf16", Napi::Function::New(env, ToBf16));
  exports.Set("fromBf16", Napi::Function::New(env, FromBf16));
}

}  // namespace tsf
