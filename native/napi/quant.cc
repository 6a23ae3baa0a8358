// N-API surface of the quantized-weight product (gemm/quant.h); arguments are read and checked by Call
// (args.h).
#include <napi.h>

#include <cstdint>
#include <vector>

#include "args.h"
#include "gemm/gemm.h"
#include "gemm/quant.h"
#include "runtime/isa.h"

namespace tsf {
namespace {

// Rows of W dequantized per block on the prefill path: about 512 KB of fp32, half of a Zen 4 / recent
// Xeon core's L2, so that the block is still there when the GEMM packs it.
long block_rows(long k) {
  const long r = (131072 / (k > 0 ? k : 1)) / 16 * 16;
  return r < 16 ? 16 : r;
}

// gemmQuant(format, m, n, k, x, xOff, w, scales, y, yOff, bias, biasOff): y[yOff..] [m, n] =
// x[xOff..] [m, k] W^T (+ bias[biasOff..]); format 0: w Int8Array [n, k] and scales Float32Array [n];
// 1: w Uint16Array of bf16 bits, scales null.
Napi::Value GemmQuant(const Napi::CallbackInfo& info) {
  Call c(info, "gemmQuant");
  if (info.Length() < 12) { c.type_error("expected 12 arguments"); return c.finish(); }
  const long format = c.count(0, "format");
  const long m = c.count(1, "m"), n = c.count(2, "n"), k = c.count(3, "k");
  const long xOff = c.count(5, "xOff"), yOff = c.count(9, "yOff"), biasOff = c.count(11, "biasOff");
  if (c.ok() && format > 1) c.range_error("format must be 0 (int8) or 1 (bf16)");
  if (!c.ok()) return c.finish();
  const double nk = (double)n * k;
  const float* x = c.f32(4, "x", (double)xOff + (double)m * k);
  const void* w = format == QUANT_INT8 ? c.typed(6, "w", napi_int8_array, "n Int8Array", nk, nullptr)
                                       : c.typed(6, "w", napi_uint16_array, " Uint16Array", nk, nullptr);
  const float* scales = format == QUANT_INT8 ? c.f32(7, "scales", (double)n) : nullptr;
  float* y = c.f32(8, "y", (double)yOff + (double)m * n);
  const float* bias = c.f32opt(10, "bias", (double)biasOff + n);
  if (!c.ok()) return c.finish();
  QuantParams p{(int)format, m, n, k, x + xOff, w, scales, y + yOff, bias ? bias + biasOff : nullptr};
  if (m == 0 || n == 0) return c.finish();
  const QuantTable& Q = isa_table(quant_scalar_table, quant_avx2_table, quant_avx512_table);
  if (m <= kQuantGemvRows || k == 0) {
    Q.gemv(p);
    return c.finish();
  }
  // prefill: dequantize a block of W rows, then the fp32 GEMM y[:, j0:j1] = x W[j0:j1]^T + bias[j0:j1]
  const GemmTable& G = isa_table(gemm_scalar_table, gemm_avx2_table, gemm_avx512_table);
  const long nb = block_rows(k);
  thread_local std::vector<float> buf;
  buf.resize((size_t)(nb < n ? nb : n) * k);
  const size_t esize = format == QUANT_INT8 ? 1 : 2;
  for (long j0 = 0; j0 < n; j0 += nb) {
    const long rows = j0 + nb < n ? nb : n - j0;
    Q.dequant(p.format, static_cast<const char*>(w) + (size_t)j0 * k * esize, scales ? scales + j0 : nullptr, rows, k, buf.data());
    GemmParams g;
    g.kind = KIND_F32; g.batch = 1; g.m = m; g.n = rows; g.k = k;
    g.a = p.x; g.lda = k; g.strideA = 0; g.transA = false;
    g.b = buf.data(); g.ldb = k; g.strideB = 0; g.transB = true;
    g.c = p.y + j0; g.ldc = n; g.strideC = 0;
    g.alpha = 1; g.beta = 0;
    g.bias = p.bias ? p.bias + j0 : nullptr;
    G.gemm(g);
  }
  return c.finish();
}

}  // namespace

void register_quant(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmQuant", Napi::Function::New(env, GemmQuant));
}

}  // namespace tsf
