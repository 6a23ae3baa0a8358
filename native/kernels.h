// Non-GEMM float32 kernels (the Backend interface of src/backend/backend.ts), one table per
// instruction set: kernels_impl.h compiled with -mavx2 -mfma (kernels_avx2.cc) and for the x86-64
// baseline (kernels_scalar.cc); addon_kernels.cc picks the table at run time.
// Every kernel is deterministic: work is split into chunks whose boundaries depend only on the
// problem size (never on the thread count), and partial sums are combined in a fixed order.
#pragma once
#include <cstdint>

namespace tsf {

enum UnaryCode {
  U_NEG = 0, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_ABS, U_TANH, U_SIGMOID, U_RELU, U_GELU_TANH,
  U_GELU_ERF, U_SILU, U_SOFTPLUS, U_ELU, U_CLAMP, U_POW, U_SQUARE, U_COUNT
};
enum BinaryCode { B_ADD = 0, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_EQ, B_GT, B_LT, B_COUNT };
enum ReduceCode { R_SUM = 0, R_MAX, R_MIN };

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
