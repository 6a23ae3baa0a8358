// im2col / col2im for 2-D convolution as a GEMM (Chellapilla et al. 2006, "High performance convolutional
// neural networks for document processing"; the layout of Caffe's im2col_cpu and PyTorch's im2col.h):
// n images x [c, h, w] <-> columns [n, c * kh * kw, oh * ow], row (ci, ki, kj), column (oy, ox) holding
// x[ci, oy * sh - ph + ki * dh, ox * sw - pw + kj * dw] (zero outside the image). The js twin is
// src/backend/js/conv.ts; both run the loops in the same order, so col2im's sums agree bit for bit.
#pragma once

namespace tsf {

struct ConvGeom {
  long n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

// col [n, c*kh*kw, oh*ow] from x [n, c, h, w].
void im2col_f32(const float* x, float* col, const ConvGeom& g);
// x [n, c, h, w] = the adjoint of im2col applied to col (overlapping taps summed; x is overwritten).
void col2im_f32(const float* col, float* x, const ConvGeom& g);

}  // namespace tsf
