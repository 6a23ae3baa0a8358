// N-API surface of the selective scan (ssm/scan.h), checked here so that no kernel reads or writes
// out of bounds:
//   selectiveScan(u, delta, A, B, C, D, y, ck, last, h0 | null, dims)
//   selectiveScanBackward(u, delta, A, B, C, D, gy, ck, gu, gdelta, gA, gB, gC, gD, dims)
// dims: Float64Array [b, d, n, L, chunk]; u, delta, y, gy, gu, gdelta [b, d, L]; A, gA [d, n];
// B, C, gB, gC [b, n, L]; D, gD [d] (Float32Array); ck [b, d, ceil(L / chunk), n], last and h0
// [b, d, n] (Float64Array).
#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"
#include "runtime/isa.h"
#include "ssm/scan.h"

namespace tsf {
namespace {

inline const ScanTable& S() { return isa_table(scan_scalar_table, scan_avx2_table, scan_avx512_table); }

bool read_dims(Call& c, size_t i, ScanParams* p) {
  size_t n = 0;
  const double* d = c.f64(i, "dims", 0, &n);
  if (!c.ok()) return false;
  if (n < 5) { c.range_error("dims must hold 5 numbers"); return false; }
  const char* names[] = {"b", "d", "n", "L", "chunk"};
  long v[5];
  for (int k = 0; k < 5; ++k) {
    if (!(d[k] >= 0) || d[k] > 9.0e15 || std::floor(d[k]) != d[k]) { c.type_error(std::string(names[k]) + " must be a non-negative integer"); return false; }
    v[k] = (long)d[k];
  }
  p->b = v[0]; p->d = v[1]; p->n = v[2]; p->L = v[3]; p->chunk = v[4];
  if (p->chunk < 1) { c.range_error("chunk must be >= 1"); return false; }
  return true;
}

// u, delta, A, B, C, D at indices 0..5
void read_inputs(Call& c, ScanParams* p) {
  const double bdl = (double)p->b * p->d * p->L, bnl = (double)p->b * p->n * p->L;
  p->u = c.f32(0, "u", bdl);
  p->delta = c.f32(1, "delta", bdl);
  p->A = c.f32(2, "A", (double)p->d * p->n);
  p->B = c.f32(3, "B", bnl);
  p->C = c.f32(4, "C", bnl);
  p->D = c.f32(5, "D", (double)p->d);
}

double ck_size(const ScanParams& p) { return (double)p.b * p.d * ((p.L + p.chunk - 1) / p.chunk) * p.n; }

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Call c(info, "selectiveScan");
  ScanParams p;
  if (!read_dims(c, 10, &p)) return c.finish();
  read_inputs(c, &p);
  p.y = c.f32(6, "y", (double)p.b * p.d * p.L);
  p.ck = const_cast<double*>(c.f64(7, "ck", ck_size(p)));
  p.last = const_cast<double*>(c.f64(8, "last", (double)p.b * p.d * p.n));
  if (c.ok() && !c.absent(9)) p.h0 = c.f64(9, "h0", (double)p.b * p.d * p.n);
  if (c.ok()) S().forward(p);
  return c.finish();
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  Call c(info, "selectiveScanBackward");
  ScanParams p;
  if (!read_dims(c, 14, &p)) return c.finish();
  read_inputs(c, &p);
  const double bdl = (double)p.b * p.d * p.L, bnl = (double)p.b * p.n * p.L;
  p.gy = c.f32(6, "gy", bdl);
  p.ck = const_cast<double*>(c.f64(7, "ck", ck_size(p)));
  p.gu = c.f32(8, "gu", bdl);
  p.gdelta = c.f32(9, "gdelta", bdl);
  p.gA = c.f32(10, "gA", (double)p.d * p.n);
  p.gB = c.f32(11, "gB", bnl);
  p.gC = c.f32(12, "gC", bnl);
  p.gD = c.f32(13, "gD", (double)p.d);
  if (c.ok()) S().backward(p);
  return c.finish();
}

}  // namespace

void register_ssm(Napi::Env env, Napi::Object exports) {
  exports.Set("selectiveScan", Napi::Function::New(env, Forward));
  exports.Set("selectiveScanBackward", Napi::Function::New(env, Backward));
}

}  // namespace tsf
