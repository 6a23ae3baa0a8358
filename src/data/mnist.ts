// MNIST (LeCun, Bottou, Bengio & Haffner 1998) from the original gzipped IDX files shipped in data/mnist/
// (provenance and checksums in data/SOURCES.md). IDX is big-endian: a magic number (2051 images, 2049
// labels), the counts and dims as uint32, then uint8 values row-major (yann.lecun.com/exdb/mnist "FILE
// FORMATS"). Batches are drawn per epoch from a seeded permutation, so the sampler's state is the RNG state.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { packageRoot } from "../backend/package-root.js";
import { RandomGenerator } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { trackStorage } from "../tensor/memory.js";

const IMAGES_MAGIC = 2051, LABELS_MAGIC = 2049;

/** Parse one IDX file (already gunzipped): uint8 values and their dims; one clear error per defect. */
export function parseIdx(buf: Uint8Array, name: string, kind: "images" | "labels"): { dims: number[]; values: Uint8Array } {
  const magic = kind === "images" ? IMAGES_MAGIC : LABELS_MAGIC, ndim = kind === "images" ? 3 : 1;
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new Error(`${name}: truncated IDX file: ${buf.length} bytes, the ${kind} header alone needs ${header}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const got = view.getUint32(0, false);
  if (got !== magic) throw new Error(`${name}: wrong IDX magic number ${got}, expected ${magic} (uint8 ${kind}, ${ndim} dims)`);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  if (kind === "images" && (dims[1] !== 28 || dims[2] !== 28)) throw new Error(`${name}: images are ${dims[1]}x${dims[2]}, expected 28x28`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + n) {
    throw new Error(`${name}: ${buf.length < header + n ? "truncated IDX file" : "trailing bytes in IDX file"}: ${buf.length} bytes, the header [${dims.join(", ")}] needs ${header + n}`);
  }
  return { dims, values: buf.subarray(header) };
}

export type MnistSplit = "train" | "test";

export interface MnistOptions {
  /** Folder with the four .gz files (default: the package's data/mnist). */
  dir?: string;
  /** Pixel range after scaling by 1/255: "[0,1]" (default) or "[-1,1]" (2p - 1, as diffusion models use). */
  normalize?: "[0,1]" | "[-1,1]";
  /** Keep only the first `limit` examples (fast tests). */
  limit?: number;
}

export interface MnistData {
  /** [n, 784] float32, row-major 28x28 images. */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  readonly rows: 28;
  readonly cols: 28;
}

const FILES: Record<MnistSplit, [string, string]> = {
  train: ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
  test: ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
};

export function loadMnist(split: MnistSplit, o: MnistOptions = {}): MnistData {
  if (split !== "train" && split !== "test") throw new RangeError(`loadMnist: split must be "train" or "test", got ${JSON.stringify(split)}`);
  const norm = o.normalize ?? "[0,1]";
  if (norm !== "[0,1]" && norm !== "[-1,1]") throw new RangeError(`loadMnist: normalize must be "[0,1]" or "[-1,1]", got ${JSON.stringify(norm)}`);
  if (o.limit !== undefined && !(Number.isSafeInteger(o.limit) && o.limit > 0)) throw new RangeError(`loadMnist: limit must be a positive integer, got ${o.limit}`);
  const dir = o.dir ?? join(packageRoot(), "data", "mnist");
  const read = (f: string, kind: "images" | "labels") => {
    const path = join(dir, f);
    let raw: Uint8Array;
    try { raw = gunzipSync(readFileSync(path)); } catch (e) { throw new Error(`${path}: cannot read the gzipped IDX file (${(e as Error).message})`); }
    return parseIdx(raw, path, kind);
  };
  const img = read(FILES[split][0], "images"), lab = read(FILES[split][1], "labels");
  if (img.dims[0] !== lab.dims[0]) throw new Error(`MNIST ${split}: ${img.dims[0]} images but ${lab.dims[0]} labels`);
  const n = Math.min(img.dims[0], o.limit ?? Infinity);
  const images = new Float32Array(n * 784);
  const [scale, shift] = norm === "[0,1]" ? [1 / 255, 0] : [2 / 255, -1];
  for (let i = 0; i < images.length; i++) images[i] = img.values[i] * scale + shift;
  const labels = Int32Array.from(lab.values.subarray(0, n));
  return { images, labels, n, rows: 28, cols: 28 };
}

/** Shuffled mini-batches: each epoch is a Fisher-Yates permutation from a seeded RandomGenerator. */
export class MnistBatcher {
  private readonly gen: RandomGenerator;
  private order = new Int32Array(0);
  private pos = 0;
  epoch = 0;

  constructor(readonly data: MnistData, readonly batchSize: number, seed = 0) {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > data.n) {
      throw new RangeError(`MnistBatcher: batchSize must be an integer in [1, ${data.n}], got ${batchSize}`);
    }
    this.gen = new RandomGenerator(seed);
  }

  private shuffle(): void {
    const n = this.data.n, u = new Uint32Array(n);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.gen.uint32(u);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor((u[i] / 4294967296) * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
    }
    this.pos = 0;
  }

  /** The start of the next batch in the epoch's order; a new epoch starts when fewer than B examples are left. */
  private advance(): number {
    if (this.pos + this.batchSize > this.order.length) { this.shuffle(); this.epoch++; }
    this.pos += this.batchSize;
    return this.pos - this.batchSize;
  }

  /** Move on as n calls of next() would, without building their batches (a resumed run). */
  skip(n: number): void {
    for (let i = 0; i < n; i++) this.advance();
  }

  /** The next batch: x float32 [B, 784], y int32 [B]; a new epoch starts when fewer than B examples are left. */
  next(): { x: Tensor; y: Tensor; index: Int32Array } {
    const B = this.batchSize, at = this.advance();
    const index = this.order.slice(at, at + B);
    const x = new Float32Array(B * 784), y = new Int32Array(B);
    index.forEach((k, b) => { x.set(this.data.images.subarray(k * 784, (k + 1) * 784), b * 784); y[b] = this.data.labels[k]; });
    trackStorage(x);
    trackStorage(y);
    return { x: new Tensor(x, [B, 784]), y: new Tensor(y, [B]), index };
  }
}
