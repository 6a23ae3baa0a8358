// Tensor: a typed-array storage seen through shape, strides and offset (views share storage), plus the
// autograd fields. Ops live in ops/; the op methods (x.add(y), x.backward(), x.toArray(), ...) are
// attached to this class by ops/methods.ts, so this floor imports nothing from the one above it.

import { dtypeOf, type DType, type Storage } from "./dtype.js";
import { allocStorage } from "./recycle.js";
import { contiguousStrides, fmtShape, isContiguous, numel, type Shape } from "./shape.js";
import { trackStorage, untrackStorage } from "./memory.js";
import { noteTensor, registerTensorClass } from "./scope.js";

export type TensorLike = Tensor | number;

/** What a tensor holds of its autograd record; autograd.ts's GradNode implements it (and imports this file). */
export interface GradRecord {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
}

/**
 * Every element the view can address must lie in its storage: integer sizes >= 0, integer strides >= 0
 * (one per dim), an integer offset >= 0. One pass over the dims, no allocation: this constructor is hot.
 */
function checkLayout(length: number, shape: number[], strides: number[], offset: number): void {
  if (strides.length !== shape.length) throw badLayout(shape, strides, offset, `${strides.length} strides for ${shape.length} dims; expected one stride per dim`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw badLayout(shape, strides, offset, "the offset must be a non-negative integer");
  let last = offset, empty = false;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i], s = strides[i];
    if (!Number.isSafeInteger(d) || d < 0) throw badLayout(shape, strides, offset, "sizes must be non-negative integers");
    if (!Number.isSafeInteger(s) || s < 0) throw badLayout(shape, strides, offset, "strides must be non-negative integers");
    if (d === 0) empty = true;
    last += (d - 1) * s;
  }
  if (!empty && last >= length) throw badLayout(shape, strides, offset, `reads up to element ${last} but the storage holds ${length}; expected a view inside its storage`);
}

function badLayout(shape: number[], strides: number[], offset: number, problem: string): RangeError {
  return new RangeError(`Tensor: shape ${fmtShape(shape)}, strides ${fmtShape(strides)}, offset ${offset}: ${problem}`);
}

export class Tensor {
  private storage: Storage;
  private dead: string | null = null;  // why the storage was given back, once it was
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The autograd record of the op that made this tensor (a GradNode of autograd.ts); null for a leaf. */
  node: GradRecord | null = null;

  constructor(data: Storage, shape: Shape, opts: { dtype?: DType; strides?: Shape; offset?: number } = {}) {
    this.storage = data;
    this.shape = [...shape];
    this.strides = opts.strides ? [...opts.strides] : contiguousStrides(shape);
    this.offset = opts.offset ?? 0;
    this.dtype = opts.dtype ?? dtypeOf(data);
    checkLayout(data.length, this.shape, this.strides, this.offset);
    noteTensor(this);
  }

  /** The storage (shared by views). Throws once tidy() has recycled it. */
  get data(): Storage {
    if (this.dead !== null) throw new Error(`${this.toString()} ${this.dead}`);
    return this.storage;
  }

  /** Whether the storage was given back (reading data would throw). */
  get isDead(): boolean {
    return this.dead !== null;
  }

  /** Its storage was recycled (by tidy(), or zeroGrad for a gradient): every later read throws, saying `why`. */
  markDead(why = "was disposed when the tidy() that created it ended (its storage is being reused); return it from the tidy function or keep() it"): void {
    this.dead = why;
  }

  /** A fresh, tracked, zero-filled tensor (torch.zeros): for kernels that accumulate or leave parts. */
  static zeros(shape: Shape, dtype: DType = "float32"): Tensor {
    return Tensor.fresh(shape, dtype, false);
  }

  /** A fresh, tracked tensor with arbitrary contents (torch.empty): for a kernel that writes every element. */
  static empty(shape: Shape, dtype: DType = "float32"): Tensor {
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

  item(): number {
    if (this.numel !== 1) throw new RangeError(`item() needs a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return this.data[this.offset];
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
}

registerTensorClass(Tensor);
