// Non-GEMM float32 kernels (the Backend interface of src/backend/backend.ts), one table per
// instruction set: kernels_impl.h compiled for avx512 (kernels_avx512.cc), with -mavx2 -mfma
// (kernels_avx2.cc) and for the x86-64 baseline (kernels_scalar.cc); napi/kernels.cc picks the table
// at run time (runtime/isa.h).
// Every kernel is deterministic: work is split into chunks whose boundaries depend only on the
// problem size (never on the thread count), and partial sums are combined in a fixed order.
#pragma once
#include <cstdint>

#include "elementwise/unary.h"  // TSF_UNARY_OPS

namespace tsf {

// Op codes: the lists below (unary ops: elementwise/unary.h); the names are exported to TS by
// opNames() (napi/kernels.cc), which builds its codes from them.
#define TSF_BINARY_OPS(X)                                                                          \
  X(B_ADD, "add") X(B_SUB, "sub") X(B_MUL, "mul") X(B_DIV, "div") X(B_POW, "pow")                  \
  X(B_MAX, "maximum") X(B_MIN, "minimum") X(B_EQ, "eq") X(B_GT, "gt") X(B_LT, "lt")
#define TSF_REDUCE_OPS(X) X(R_SUM, "sum") X(R_MAX, "max") X(R_MIN, "min")

#define TSF_CODE(code, ...) code,
enum UnaryCode { TSF_UNARY_OPS(TSF_CODE) U_COUNT };
enum BinaryCode { TSF_BINARY_OPS(TSF_CODE) B_COUNT };
enum ReduceCode { TSF_REDUCE_OPS(TSF_CODE) R_COUNT };
#undef TSF_CODE

constexpr int kMaxRank = 16;

struct KernelTable {
  void (*unary)(int op, const float* x, float* y, long n, float a, float b);
  void (*unary_backward)(int op, const float* x, const float* y, const float* gy, float* gx, long n,
                         float a, float b);
  // out (contiguous, shape) = a[off + idx . as] op b[idx . bs]; strides may be 0 (broadcast)
  void (*binary)(int op, const float* a, const float* b, float* out, int rank, const long* shape,
                 const long* as, const long* bs);
  void (*strided_copy)(const float* src, float* dst, int rank, const long* shape, const long* ss,
                       const long* ds);
  void (*where)(const float* c, const float* a, const float* b, float* out, long n);
  void (*reduce)(int op, const float* x, long outer, long dim, long inner, float* out);
  void (*cumsum)(const float* x, long outer, long dim, long inner, float* out, bool reverse);
  void (*softmax)(const float* x, float* y, long rows, long cols, bool log);
  void (*softmax_backward)(const float* y, const float* gy, float* gx, long rows, long cols, bool log);
  // targets must have been validated (in range or == ignore)
  void (*cross_entropy)(const float* x, const int32_t* t, long rows, long cols, long ignore,
                        double smoothing, float* loss, float* lse);
  void (*cross_entropy_backward)(const float* x, const int32_t* t, const float* lse, const float* gl,
                                 long rows, long cols, long ignore, double smoothing, float* gx);
  void (*layer_norm)(const float* x, const float* w, const float* b, long rows, long cols, double eps,
                     float* y, float* mean, float* rstd);
  void (*layer_norm_backward)(const float* x, const float* w, const float* mean, const float* rstd,
                              const float* gy, long rows, long cols, float* gx, float* gw, float* gb);
  void (*rms_norm)(const float* x, const float* w, long rows, long cols, double eps, float* y,
                   float* rstd);
  void (*rms_norm_backward)(const float* x, const float* w, const float* rstd, const float* gy,
                            long rows, long cols, float* gx, float* gw);
  // indices must have been validated
  void (*index_select)(const float* x, long outer, long dimIn, long inner, const int32_t* idx,
                       long nIdx, float* out);
  void (*index_add)(const float* g, long outer, long dimIn, long inner, const int32_t* idx, long nIdx,
                    float* gx);
  void (*adamw)(float* p, const float* g, float* m, float* v, long n, double lr, double b1, double b2,
                double eps, double wd, double bc1, double bc2);
};

extern const KernelTable kernels_scalar_table;
extern const KernelTable kernels_avx2_table;
extern const KernelTable kernels_avx512_table;

}  // namespace tsf
