// im2col / col2im (see im2col.h). One task per (image, channel) plane: im2col writes its kh*kw rows,
// col2im its own x plane, so threads never share an output. The valid output columns of a tap are
// found once per (tap, output row): the inner loop is a plain strided copy (contiguous for stride 1).
#include "conv/im2col.h"

#include <algorithm>
#include <cstring>

#include "runtime/pool.h"

namespace tsf {
namespace {

constexpr long kParMin = 65536;  // elements: below this the calling thread does it alone

// First and one-past-last ox with 0 <= ox * s - p + off < w (off = kj * dw).
inline void valid_range(long w, long s, long p, long off, long ow, long* lo, long* hi) {
  const long a = p - off;  // ox * s >= a
  long l = a <= 0 ? 0 : (a + s - 1) / s;
  const long b = w + p - off;  // ox * s < b
  long h = b <= 0 ? 0 : (b + s - 1) / s;
  *lo = std::min(l, ow);
  *hi = std::max(*lo, std::min(h, ow));
}

template <bool kAdjoint>
void plane(const float* src, float* dst, const ConvGeom& g, long nc) {
  const long L = g.oh * g.ow;
  // im2col: src = x plane, dst = its kh*kw rows; col2im: src = those rows, dst = x plane
  const long ci = nc % g.c, img = nc / g.c;
  const long xoff = nc * g.h * g.w;
  const long coff = (img * g.c + ci) * g.kh * g.kw * L;
  const float* xs = kAdjoint ? nullptr : src + xoff;
  float* xd = kAdjoint ? dst + xoff : nullptr;
  if (kAdjoint) std::memset(xd, 0, sizeof(float) * g.h * g.w);
  for (long ki = 0; ki < g.kh; ++ki) {
    for (long kj = 0; kj < g.kw; ++kj) {
      const long row = coff + (ki * g.kw + kj) * L;
      long lo, hi;
      valid_range(g.w, g.sw, g.pw, kj * g.dw, g.ow, &lo, &hi);
      for (long oy = 0; oy < g.oh; ++oy) {
        const long iy = oy * g.sh - g.ph + ki * g.dh;
        const long at = row + oy * g.ow;
        if (iy < 0 || iy >= g.h) {
          if (!kAdjoint) std::memset(dst + at, 0, sizeof(float) * g.ow);
          continue;
        }
        const long base = iy * g.w - g.pw + kj * g.dw;
        if (kAdjoint) {
          const float* c = src + at;
          for (long ox = lo; ox < hi; ++ox) xd[base + ox * g.sw] += c[ox];
        } else {
          float* c = dst + at;
          for (long ox = 0; ox < lo; ++ox) c[ox] = 0.f;
          for (long ox = lo; ox < hi; ++ox) c[ox] = xs[base + ox * g.sw];
          for (long ox = hi; ox < g.ow; ++ox) c[ox] = 0.f;
        }
      }
    }
  }
}

template <bool kAdjoint>
struct Task { const float* src; float* dst; const ConvGeom* g; long planes; };

template <bool kAdjoint>
void run_task(void* ctx, int tid, int nt) {
  auto* t = static_cast<Task<kAdjoint>*>(ctx);
  const long b = t->planes * tid / nt, e = t->planes * (tid + 1) / nt;
  for (long p = b; p < e; ++p) plane<kAdjoint>(t->src, t->dst, *t->g, p);
}

template <bool kAdjoint>
void run(const float* src, float* dst, const ConvGeom& g) {
  const long planes = g.n * g.c;
  if (planes <= 0) return;
  const double work = (double)planes * g.kh * g.kw * g.oh * g.ow;
  int nt = work >= (double)kParMin ? pool_threads() : 1;
  if (nt > planes) nt = (int)planes;
  Task<kAdjoint> t{src, dst, &g, planes};
  if (nt <= 1) run_task<kAdjoint>(&t, 0, 1);
  else pool_run(nt, run_task<kAdjoint>, &t);
}

}  // namespace

void im2col_f32(const float* x, float* col, const ConvGeom& g) { run<false>(x, col, g); }
void col2im_f32(const float* col, float* x, const ConvGeom& g) { run<true>(col, x, g); }

}  // namespace tsf
