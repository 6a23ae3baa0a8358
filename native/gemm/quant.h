// y = x W^T (+ bias) with the weight W [n, k] stored for inference: int8 with one fp32 scale per
// output row (per-output-channel symmetric: W[j, p] = scale[j] * q[j, p], q in [-127, 127]), or bf16
// bits. x [m, k] and y [m, n] are fp32 with contiguous rows; the products accumulate in fp32.
// quant_gemv (m <= kQuantGemvRows, decoding) reads the stored weight directly, widening it to fp32 in
// registers; larger m (prefill) dequantizes blocks of W rows and runs the fp32 GEMM (napi/quant.cc).
#pragma once
#include <cstdint>

namespace tsf {

enum QuantFormat { QUANT_INT8 = 0, QUANT_BF16 = 1 };

struct QuantParams {
  int format;
  long m, n, k;
  const float* x;       // [m, k], row stride k
  const void* w;        // [n, k]: int8_t (QUANT_INT8) or uint16_t bf16 bits (QUANT_BF16)
  const float* scales;  // [n] (QUANT_INT8), else unused
  float* y;             // [m, n], row stride n
  const float* bias;    // [n] or nullptr
};

constexpr long kQuantGemvRows = 8;

// One instruction set's entry points.
struct QuantTable {
  void (*gemv)(const QuantParams& p);
  // dst [rows, k] fp32 = the rows of W from w (already offset to the first row) and scales.
  void (*dequant)(int format, const void* w, const float* scales, long rows, long k, float* dst);
};
extern const QuantTable quant_scalar_table;
extern const QuantTable quant_avx2_table;
extern const QuantTable quant_avx512_table;

}  // namespace tsf
