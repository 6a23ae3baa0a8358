// Native float32 FlashAttention (Dao et al. 2022; FlashAttention-2, Dao 2023): the kernels of
// FlashArgs / FlashBackwardArgs (src/backend/backend.ts), mirroring src/backend/js/flash.ts (mask rules: src/backend/mask.ts). One copy
// of flash_impl.h per instruction set (flash_avx512.cc, flash_avx2.cc: -mavx2 -mfma, flash_scalar.cc: x86-64 baseline);
// napi/flash.cc picks one at run time (runtime/isa.h). Only tile-sized scratch (per thread) plus, in the backward,
// D = rowsum(dO * O) of size B * H * Tq (like lse); never a Tq x S buffer.
// Deterministic: every output element is computed by one thread in a fixed order that depends only on
// the problem shape, so results are bitwise identical run to run and for any thread count.
#pragma once
#include <cstdint>

namespace tsf {

struct FlashParams {
  long B = 0, H = 0, Hkv = 0, Tq = 0, S = 0, d = 0;
  long kv_rows = 0;               // rows from one (b, kv head) of k / v to the next (>= S; forward only)
  float scale = 1;
  bool causal = false;
  long window = 0;                // 0 = unlimited
  const int32_t* cu = nullptr;    // cuSeqlens (validated: 0 .. S, non-decreasing; Tq == S)
  long ncu = 0;
  const uint8_t* table = nullptr; // block mask [nb x nb], nb = ceil(S / bs), or only its rows tqb0 .. nb - 1
  long bs = 1;
  long tqb0 = 0;                  // the first query block the table holds
  const float *q = nullptr, *k = nullptr, *v = nullptr;
  float *o = nullptr, *lse = nullptr;  // forward outputs (backward: inputs)
  const float* dO = nullptr;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
  int bwd_mode = 0;  // backward schedule: 0 by shape, 1 fused (dQ in the dK/dV sweep), 2 separate dQ pass
  bool lowp = false; // backward in float32 only, without the double products (autocast)
};

struct FlashTable {
  void (*forward)(const FlashParams& p);
  void (*backward)(const FlashParams& p);
};
extern const FlashTable flash_scalar_table;
extern const FlashTable flash_avx2_table;
extern const FlashTable flash_avx512_table;

}  // namespace tsf
