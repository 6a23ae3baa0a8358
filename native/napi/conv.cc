// N-API surface of im2col / col2im (conv/im2col.h), checked here so that no kernel reads or writes out
// of bounds:
//   im2col(x, col, dims)   col2im(col, x, dims)
// dims: Float64Array [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow].
#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"
#include "conv/im2col.h"

namespace tsf {
namespace {

bool read_geom(Call& c, size_t i, ConvGeom* g) {
  size_t n = 0;
  const double* d = c.f64(i, "dims", 0, &n);
  if (!c.ok()) return false;
  if (n < 14) { c.range_error("dims must hold 14 numbers"); return false; }
  long v[14];
  for (int k = 0; k < 14; ++k) {
    if (!(d[k] >= 0) || d[k] > 9.0e15 || std::floor(d[k]) != d[k]) { c.type_error("dims[" + std::to_string(k) + "] must be a non-negative integer"); return false; }
    v[k] = (long)d[k];
  }
  *g = ConvGeom{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]};
  if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) { c.range_error("stride and dilation must be >= 1"); return false; }
  return true;
}

// x: index of the image array, col: of the column array
template <bool kAdjoint>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  Call c(info, kAdjoint ? "col2im" : "im2col");
  ConvGeom g;
  if (!read_geom(c, 2, &g)) return c.finish();
  const double nx = (double)g.n * g.c * g.h * g.w, ncol = (double)g.n * g.c * g.kh * g.kw * g.oh * g.ow;
  if (kAdjoint) {
    const float* col = c.f32(0, "col", ncol);
    float* x = c.f32(1, "x", nx);
    if (c.ok()) col2im_f32(col, x, g);
  } else {
    const float* x = c.f32(0, "x", nx);
    float* col = c.f32(1, "col", ncol);
    if (c.ok()) im2col_f32(x, col, g);
  }
  return c.finish();
}

}  // namespace

void register_conv(Napi::Env env, Napi::Object exports) {
  exports.Set("im2col", Napi::Function::New(env, Entry<false>));
  exports.Set("col2im", Napi::Function::New(env, Entry<true>));
}

}  // namespace tsf
