// Differentiable ops, each forward + backward in one place.
export * from "./util.js";
export * from "./views.js";
export * from "./unary.js";
export * from "./binary.js";
export * from "./reduce.js";
export * from "./join.js";
export * from "./matmul.js";
export * from "./softmax.js";
export * from "./loss.js";
export * from "./norm.js";
export * from "./indexing.js";
export * from "./mask.js";
export * from "./dropout.js";
export * from "./create.js";
export * from "./functional.js";
