// The op lists of the elementwise and reduction kernels: the names the Backend's unary / binary /
// reduce kernels take. A new unary op: one line in UNARY_OPS, its js twin (js/elementwise.ts), its C++
// cases (native/elementwise/unary.h). This file imports nothing, so every backend module may import it.

/** Parameters of the parametric unary ops: clamp(lo, hi), powScalar(p), elu(alpha), softplus(beta, threshold). */
export interface UnaryParams { a?: number; b?: number }

/** A unary elementwise op: forward y = f(x) and backward gx = gy f'(x) (the kernels unary, unaryBackward). */
export interface UnaryOpInfo {
  /**
   * Inputs drawn by the generic kernel tests (native vs js, float64 gradcheck): where f is smooth and of
   * moderate size, so that central differences are valid.
   */
  readonly domain: readonly [number, number];
  /** The UnaryParams the op reads, at the values the tests use. */
  readonly params?: UnaryParams;
}

/** Unary elementwise ops. A new op: one line here, its js twin (js/elementwise.ts), its C++ cases. */
export const UNARY_OPS = {
  neg: { domain: [-3, 3] },
  exp: { domain: [-5, 5] },
  log: { domain: [0.05, 20] },
  sqrt: { domain: [0.05, 9] },
  rsqrt: { domain: [0.05, 9] },
  abs: { domain: [-3, 3] },
  tanh: { domain: [-4, 4] },
  sigmoid: { domain: [-8, 8] },
  relu: { domain: [-3, 3] },
  gelu_tanh: { domain: [-5, 5] },
  gelu_erf: { domain: [-5, 5] },
  silu: { domain: [-8, 8] },
  softplus: { domain: [-6, 6], params: { a: 1.5, b: 5 } },  // beta, threshold
  elu: { domain: [-4, 4], params: { a: 0.7 } },  // alpha
  clamp: { domain: [-2, 2], params: { a: -0.5, b: 0.8 } },  // min, max
  powScalar: { domain: [0.05, 4], params: { a: 2.5 } },  // exponent
  square: { domain: [-3, 3] },
  sin: { domain: [-4, 4] },
  cos: { domain: [-4, 4] },
} as const satisfies Record<string, UnaryOpInfo>;
export type UnaryOp = keyof typeof UNARY_OPS;

export const BINARY_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "gt", "lt"] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export const REDUCE_OPS = ["sum", "max", "min"] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];
