// Quantized-weight GEMV (quant_impl.h) for any x86-64: 4-lane plain arrays the compiler maps onto SSE.
#include <cstdint>
#include <cstring>

namespace tsf {
namespace quant_scalar_ns {
struct V {
  struct vec { float v[4]; };
  static constexpr int L = 4;
  static inline vec zero() { return vec{{0, 0, 0, 0}}; }
  static inline vec loadu(const float* p) { return vec{{p[0], p[1], p[2], p[3]}}; }
  static inline void storeu(float* p, vec v) { for (int i = 0; i < 4; ++i) p[i] = v.v[i]; }
  static inline vec fma(vec a, vec b, vec c) {
    for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static inline vec widen(const int8_t* p) { return vec{{(float)p[0], (float)p[1], (float)p[2], (float)p[3]}}; }
  static inline vec widen(const uint16_t* p) {
    vec r;
    for (int i = 0; i < 4; ++i) {
      const uint32_t bits = (uint32_t)p[i] << 16;
      std::memcpy(&r.v[i], &bits, 4);
    }
    return r;
  }
};
}  // namespace quant_scalar_ns
}  // namespace tsf

#define TSF_QNS quant_scalar_ns
#include "quant_impl.h"

namespace tsf {
const QuantTable quant_scalar_table = {quant_scalar_ns::gemv, quant_scalar_ns::dequant};
}  // namespace tsf
