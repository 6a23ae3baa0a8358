// Unary elementwise ops: the list (op code, name, transcendental: whether a smaller size already goes
// to the threads) and each op's forward y = f(x) and backward gx = gy * f'(x), y = f(x) given.
// A new op is one X(...) line here, its two cases below, its js twin (src/backend/js/elementwise.ts) and
// its line in the op table (src/backend/op-table.ts); names are exported to TS by opNames().
// Read twice: kernels.h takes the list (the op codes); kernels_impl.h, inside its per-ISA namespace
// with TSF_UNARY_MATH defined, takes the math (f_exp etc. are that namespace's).
#ifndef TSF_UNARY_OPS
#define TSF_UNARY_OPS(X)                                                                           \
  X(U_NEG, "neg", 0) X(U_EXP, "exp", 1) X(U_LOG, "log", 1) X(U_SQRT, "sqrt", 0)                    \
  X(U_RSQRT, "rsqrt", 0) X(U_ABS, "abs", 0) X(U_TANH, "tanh", 1) X(U_SIGMOID, "sigmoid", 1)        \
  X(U_RELU, "relu", 0) X(U_GELU_TANH, "gelu_tanh", 1) X(U_GELU_ERF, "gelu_erf", 1)                 \
  X(U_SILU, "silu", 1) X(U_SOFTPLUS, "softplus", 1) X(U_ELU, "elu", 1) X(U_CLAMP, "clamp", 0)      \
  X(U_POW, "powScalar", 1) X(U_SQUARE, "square", 0) X(U_SIN, "sin", 1) X(U_COS, "cos", 1)
#endif

#ifdef TSF_UNARY_MATH
template <int OP>
inline float ufwd(float x, float a, float b) {
  switch (OP) {
    case U_NEG: return -x;
    case U_EXP: return f_exp(x);
    case U_LOG: return std::log(x);
    case U_SQRT: return std::sqrt(x);
    case U_RSQRT: return 1.0f / std::sqrt(x);
    case U_ABS: return std::fabs(x);
    case U_SQUARE: return x * x;
    case U_TANH: return f_tanh(x);
    case U_SIGMOID: return f_sigmoid(x);
    case U_RELU: return x > 0.0f ? x : 0.0f;
    // 0.5 x (1 + tanh(u)) = x sigmoid(2u) = x / (1 + e^(-2u)): no cancellation for negative x, and
    // e^(-2u) = inf far left gives the limit -0 (one exp and one division, no branches to blend)
    case U_GELU_TANH: return x / (1.0f + f_exp(-2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case U_GELU_ERF: return 0.5f * x * std::erfc(-x * kInvSqrt2);
    case U_SILU: return x * f_sigmoid(x);
    case U_SOFTPLUS: { const float bx = a * x; return bx > b ? x : std::log1p(f_exp(bx)) / a; }
    case U_ELU: return x > 0.0f ? x : a * std::expm1(x);
    case U_CLAMP: { const float v = x < a ? a : x; return v > b ? b : v; }
    case U_POW: return std::pow(x, a);
    case U_SIN: return std::sin(x);
    case U_COS: return std::cos(x);
  }
  return 0.0f;
}

template <int OP>
inline float ubwd(float x, float y, float gy, float a, float b) {
  switch (OP) {
    case U_NEG: return -gy;
    case U_EXP: return gy * y;
    case U_LOG: return gy / x;
    case U_SQRT: return gy * 0.5f / y;
    case U_RSQRT: return -0.5f * gy * y * y * y;
    case U_ABS: { const float s = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); return gy * s; }
    case U_SQUARE: return 2.0f * gy * x;
    case U_TANH: return gy * ((1.0f - y) * (1.0f + y));
    case U_SIGMOID: return gy * (y * (1.0f - y));
    case U_RELU: return x > 0.0f ? gy : 0.0f;
    case U_GELU_TANH: {
      // with s = sigmoid(2u): 0.5 (1 + t) = s, 1 - t^2 = 4 s (1 - s). float32 as in PyTorch (8 lanes,
      // not 4): near the derivative's zero (x ~ -0.75) the two terms (~0.2 each) cancel, leaving an
      // error of ~1 ulp of 0.2 rather than of the result.
      const float x2 = x * x, u = kSqrt2OverPi * x * (1.0f + 0.044715f * x2);
      float om;
      const float s = f_sigmoid2(2.0f * u, &om);
      float d = 2.0f * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x2) * x * s * om;
      d = std::fabs(x) > 40.0f ? 0.0f : d;
      return gy * (s + d);
    }
    case U_GELU_ERF: {
      const double v = x;
      return (float)((double)gy * (0.5 * std::erfc(-v * 0.70710678118654752440) +
                                   v * 0.39894228040143267794 * d_exp_neg(-0.5 * v * v)));
    }
    case U_SILU: {
      double om;
      const double v = x, s = d_sigmoid2(v, &om);
      return (float)((double)gy * s * (1.0 + v * om));
    }
    case U_SOFTPLUS: return a * x > b ? gy : gy * f_sigmoid(a * x);
    case U_ELU: return x > 0.0f ? gy : gy * a * f_exp(x);
    case U_CLAMP: return x >= a && x <= b ? gy : 0.0f;
    case U_POW: return gy * a * std::pow(x, a - 1.0f);
    case U_SIN: return gy * std::cos(x);
    case U_COS: return -gy * std::sin(x);
  }
  return 0.0f;
}
#endif
