// Native float32 selective scan (Mamba, Gu & Dao 2023, Algorithm 2), forward and backward, chunked:
// the kernels of ScanArgs / ScanBackwardArgs (src/backend/backend.ts), the twin of
// src/backend/js/scan.ts (same algorithm: the state saved every `chunk` steps as float64, the backward
// recomputing one chunk of states at a time from its saved start). One copy of scan_impl.h per
// instruction set (scan_avx512.cc, scan_avx2.cc: -mavx2 -mfma, scan_scalar.cc: x86-64 baseline);
// napi/ssm.cc picks one at run time (runtime/isa.h).
// Numerics: the state h and exp(delta A) are float32 (as mamba_ssm's CUDA kernel): the recurrence is
// contractive (0 < exp(delta A) < 1), so rounding errors do not grow along the sequence; the sums over
// the whole sequence and batch (dA, dD) and over channels (dB, dC) are accumulated in double.
// Deterministic: work is split by channel groups whose size depends only on the problem shape, and the
// partial sums are combined in a fixed order.
#pragma once

namespace tsf {

struct ScanParams {
  long b = 0, d = 0, n = 0, L = 0, chunk = 1;
  const float *u = nullptr, *delta = nullptr, *A = nullptr, *B = nullptr, *C = nullptr, *D = nullptr;
  const double* h0 = nullptr;  // [b, d, n] or null (zeros)
  float* y = nullptr;          // [b, d, L]
  double* ck = nullptr;        // [b, d, ceil(L / chunk), n]: the state before each chunk
  double* last = nullptr;      // [b, d, n]
  // backward: gy in; gu, gdelta [b, d, L], gA [d, n], gB, gC [b, n, L], gD [d] overwritten
  const float* gy = nullptr;
  float *gu = nullptr, *gdelta = nullptr, *gA = nullptr, *gB = nullptr, *gC = nullptr, *gD = nullptr;
};

struct ScanTable {
  void (*forward)(const ScanParams& p);
  void (*backward)(const ScanParams& p);
};
extern const ScanTable scan_scalar_table;
extern const ScanTable scan_avx2_table;
extern const ScanTable scan_avx512_table;

}  // namespace tsf
