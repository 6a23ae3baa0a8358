// Batched, strided GEMM entry points, one table per instruction set (picked at run time by napi/gemm.cc,
// runtime/isa.h).
// Row-major: C_i = alpha * op(A_i) op(B_i) + beta * C_i (+ bias in every row when bias is set: the
// Linear bias added in the write-back, an "epilogue", instead of a pass that broadcasts it into C);
// lda/ldb/ldc are row strides of the STORED matrices (a transposed A is stored k x m). Pointers
// already include the offsets.
#pragma once
#include <cstdint>

namespace tsf {

enum GemmKind { KIND_F32 = 0, KIND_BF16 = 1, KIND_BF16_PAIRS = 2 };

struct GemmParams {
  int kind;  // F32: a, b are float*. BF16*: a, b are uint16_t* (bf16 bits). c is always float*.
  long batch, m, n, k;
  const void* a; long lda, strideA; bool transA;
  const void* b; long ldb, strideB; bool transB;
  float* c; long ldc, strideC;
  float alpha, beta;
  const float* bias = nullptr;  // fp32, batch 1 only: n values, bias[j] added to column j of every row
};

// Grouped fp32 GEMM (gemm_grouped_impl.h): G products over one A cut at row offsets[0..G]
// (offsets[0] = 0, non-decreasing). GROUP_ROWS: C[o_g:o_g+1] = A[o_g:o_g+1] op(B_g), A [*, k],
// B_g = bs[g] ([n, k] when transB, else [k, n]), C [*, n]. GROUP_K: C_g = cs[g] [m, n] =
// A[o_g:o_g+1]^T B[o_g:o_g+1], A [*, m], B [*, n]. Row strides lda, ldb, ldc; beta 0.
enum GroupMode { GROUP_ROWS = 0, GROUP_K = 1 };
struct GroupedParams {
  int mode;
  long groups;
  const int32_t* offsets;
  long m, n, k;  // GROUP_ROWS reads n, k; GROUP_K reads m, n
  const float* a; long lda;
  const float* const* bs; const float* b; long ldb; bool transB;
  float* c; float* const* cs; long ldc;
};

// Returns false when the kind is not supported by that ISA (BF16_PAIRS needs avx2 or avx512bf16).
bool gemm_scalar(const GemmParams& p);
bool gemm_avx2(const GemmParams& p);
bool gemm_avx512(const GemmParams& p);     // avx512f/bw/vl; bf16 converted to fp32 at packing
bool gemm_avx512bf16(const GemmParams& p); // as above, but bf16 via vdpbf16ps
void gemm_grouped_scalar(const GroupedParams& p);
void gemm_grouped_avx2(const GroupedParams& p);
void gemm_grouped_avx512(const GroupedParams& p);

void to_bf16_scalar(const float* src, uint16_t* dst, long n);
void to_bf16_avx2(const float* src, uint16_t* dst, long n);
void from_bf16_scalar(const uint16_t* src, float* dst, long n);
void from_bf16_avx2(const uint16_t* src, float* dst, long n);
void to_bf16_avx512(const float* src, uint16_t* dst, long n);
void from_bf16_avx512(const uint16_t* src, float* dst, long n);

// One instruction set's entry points.
struct GemmTable {
  bool (*gemm)(const GemmParams& p);
  void (*to_bf16)(const float* src, uint16_t* dst, long n);
  void (*from_bf16)(const uint16_t* src, float* dst, long n);
  void (*grouped)(const GroupedParams& p);
};
extern const GemmTable gemm_scalar_table;
extern const GemmTable gemm_avx2_table;
extern const GemmTable gemm_avx512_table;

}  // namespace tsf
