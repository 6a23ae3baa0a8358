// Portable kernels for any x86-64 (SSE2 baseline): the same blocked algorithm with a 6 x 8 tile of
// plain float arrays that the compiler maps onto SSE registers.
#include <cstdint>

namespace tsf {
namespace scalar_ns {
struct V {
  struct vec { float v[4]; };
  static constexpr int L = 4;
  static constexpr long MC = 96, KC = 256, NC = 2048;
  static inline vec zero() { return vec{{0, 0, 0, 0}}; }
  static inline vec set1(float x) { return vec{{x, x, x, x}}; }
  static inline vec loadu(const float* p) { return vec{{p[0], p[1], p[2], p[3]}}; }
  static inline void storeu(float* p, vec v) { for (int i = 0; i < 4; ++i) p[i] = v.v[i]; }
  static inline vec bcast(const float* p) { return set1(*p); }
  static inline vec fma(vec a, vec b, vec c) {
    for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static inline vec mul(vec a, vec b) {
    for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
    return a;
  }
  static inline void prefetch(const float*) {}
};
}  // namespace scalar_ns
}  // namespace tsf

#define TSF_NS scalar_ns
#include "gemm_impl.h"

namespace tsf {
bool gemm_scalar(const GemmParams& p) {
  using namespace scalar_ns;
  if (p.kind == KIND_F32) run<KF32>(p);
  else if (p.kind == KIND_BF16) run<KBF16>(p);
  else return false;
  return true;
}
void to_bf16_scalar(const float* s, uint16_t* d, long n) { scalar_ns::to_bf16_impl(s, d, n); }
void from_bf16_scalar(const uint16_t* s, float* d, long n) { scalar_ns::from_bf16_impl(s, d, n); }
void gemm_grouped_scalar(const GroupedParams& p) { scalar_ns::run_grouped<scalar_ns::KF32>(p); }
const GemmTable gemm_scalar_table = {gemm_scalar, to_bf16_scalar, from_bf16_scalar, gemm_grouped_scalar};
}  // namespace tsf
