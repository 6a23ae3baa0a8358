// Tensor: a typed-array storage seen through shape, strides and offset (views share storage), plus the
// autograd fields. Ops live in ops/; the methods here are thin sugar over them.

import { allocStorage, dtypeOf, type DType, type Storage } from "./dtype.js";
import { contiguousStrides, fmtShape, isContiguous, numel, type Shape } from "./shape.js";
import { runBackward, type GradNode } from "./autograd.js";
import { trackStorage, untrackStorage } from "./memory.js";
import { noteTensor } from "./scope.js";
import * as ops from "../ops/index.js";

export type Scalar = number;
export type TensorLike = Tensor | number;

export class Tensor {
  private storage: Storage;
  private dead = false;
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;

  constructor(data: Storage, shape: Shape, opts: { dtype?: DType; strides?: Shape; offset?: number } = {}) {
    this.storage = data;
    this.shape = [...shape];
    this.strides = opts.strides ? [...opts.strides] : contiguousStrides(shape);
    this.offset = opts.offset ?? 0;
    this.dtype = opts.dtype ?? dtypeOf(data);
    noteTensor(this);
  }

  /** The storage (shared by views). Throws once tidy() has recycled it. */
  get data(): Storage {
    if (this.dead) {
      throw new Error(`${this.toString()} was disposed when the tidy() that created it ended (its storage is being reused); return it from the tidy function or keep() it`);
    }
    return this.storage;
  }

  /** tidy() recycled the storage: every later read throws. */
  markDead(): void {
    this.dead = true;
  }

  /** A fresh, tracked, zero-filled tensor. */
  static empty(shape: Shape, dtype: DType = "float32"): Tensor {
    return Tensor.fresh(shape, dtype, false);
  }

  /** A fresh, tracked tensor with arbitrary contents (torch.empty): for a kernel that writes every element. */
  static uninitialized(shape: Shape, dtype: DType = "float32"): Tensor {
    return Tensor.fresh(shape, dtype, true);
  }

  private static fresh(shape: Shape, dtype: DType, uninitialized: boolean): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape ${fmtShape(shape)}: sizes must be non-negative integers`);
    }
    const data = allocStorage(dtype, numel(shape), uninitialized);
    trackStorage(data);
    return new Tensor(data, shape, { dtype });
  }

  get ndim(): number { return this.shape.length; }
  get numel(): number { return numel(this.shape); }
  get isContiguous(): boolean { return isContiguous(this.shape, this.strides); }
  get isLeaf(): boolean { return this.node === null; }

  size(dim?: number): number | number[] {
    return dim === undefined ? [...this.shape] : this.shape[dim < 0 ? dim + this.ndim : dim];
  }

  /** Values in logical (row-major) order as a fresh typed array of this dtype. */
  toTypedArray(): Storage {
    return ops.contiguousData(this).slice();
  }

  /** Values as nested JS arrays (a number for a 0-d tensor). */
  toArray(): unknown {
    const flat = Array.from(ops.contiguousData(this) as ArrayLike<number>);
    if (this.ndim === 0) return flat[0];
    const build = (dim: number, off: number): unknown[] => {
      const n = this.shape[dim];
      if (dim === this.ndim - 1) return flat.slice(off, off + n);
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  }

  item(): number {
    if (this.numel !== 1) throw new RangeError(`item() needs a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return this.data[this.offset];
  }

  /** Backpropagate from this tensor; gradient defaults to 1 for a scalar. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    if (!this.requiresGrad) throw new Error("backward() on a tensor that does not require grad (no input had requiresGrad)");
    let seed = gradient;
    if (!seed) {
      if (this.numel !== 1) throw new Error(`backward() without a gradient needs a scalar, got shape ${fmtShape(this.shape)}`);
      seed = ops.onesLike(this);
    }
    runBackward(this, seed, ops.add, opts.retainGraph ?? false);
  }

  /** Same storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, { dtype: this.dtype, strides: this.strides, offset: this.offset });
  }

  requiresGrad_(flag = true): this {
    if (this.node) throw new Error("requiresGrad_ is for leaf tensors; use detach() first");
    this.requiresGrad = flag;
    return this;
  }

  /** Stop counting this tensor's storage as live memory now (the storage itself is freed by GC). */
  dispose(): void {
    untrackStorage(this.data);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  // ---- sugar over ops/ ----
  add(o: TensorLike): Tensor { return ops.add(this, o); }
  sub(o: TensorLike): Tensor { return ops.sub(this, o); }
  mul(o: TensorLike): Tensor { return ops.mul(this, o); }
  div(o: TensorLike): Tensor { return ops.div(this, o); }
  pow(o: TensorLike): Tensor { return ops.pow(this, o); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  relu(): Tensor { return ops.relu(this); }
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }
  sum(dim?: number | number[], keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  mean(dim?: number | number[], keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  amax(dim?: number | number[], keepdim = false): Tensor { return ops.amax(this, dim, keepdim); }
  amin(dim?: number | number[], keepdim = false): Tensor { return ops.amin(this, dim, keepdim); }
  softmax(dim = -1): Tensor { return ops.softmax(this, dim); }
  logSoftmax(dim = -1): Tensor { return ops.logSoftmax(this, dim); }
  reshape(...shape: number[]): Tensor { return ops.reshape(this, shape); }
  view(...shape: number[]): Tensor { return ops.reshape(this, shape); }
  permute(...dims: number[]): Tensor { return ops.permute(this, dims); }
  transpose(d0: number, d1: number): Tensor { return ops.transpose(this, d0, d1); }
  narrow(dim: number, start: number, length: number): Tensor { return ops.narrow(this, dim, start, length); }
  expand(...shape: number[]): Tensor { return ops.expand(this, shape); }
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  flatten(start = 0, end = -1): Tensor { return ops.flatten(this, start, end); }
  contiguous(): Tensor { return ops.contiguous(this); }
  to(dtype: DType): Tensor { return ops.cast(this, dtype); }
}
