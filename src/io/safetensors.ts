// safetensors read/write with full validation, independent of the Tensor class.
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON header, then the data section.
// Validation follows the reference implementation (huggingface/safetensors): header <= 100 MB, every
// entry well-formed, byte size == numel * itemsize, tensors cover the data section contiguously.
// Typed arrays are copied in platform byte order; every Node target we support is little-endian.
import { closeSync, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { brief, formatBytes, isObject, openRegular, parseJsonText, readAt, type FileReadError } from "./read.js";

export type SafeDType = "F64" | "F32" | "BF16" | "F16" | "I64" | "I32" | "I16" | "I8" | "U16" | "U8" | "BOOL";

export type SafeData =
  | Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array;

/** BF16/F16 hold raw bits in a Uint16Array; BOOL is a Uint8Array of 0/1. */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeData;
}

export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Every safetensors problem: the message names the file, the problem and what was expected. */
export class SafetensorsError extends Error {
  constructor(readonly source: string, problem: string, options?: { cause?: unknown }) {
    super(`${source}: ${problem}`, options);
    this.name = "SafetensorsError";
  }
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): SafeData; BYTES_PER_ELEMENT: number };

const DTYPES: Record<SafeDType, ArrayCtor> = {
  F64: Float64Array, F32: Float32Array, BF16: Uint16Array, F16: Uint16Array,
  I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array,
  U16: Uint16Array, U8: Uint8Array, BOOL: Uint8Array,
};
const SUPPORTED = Object.keys(DTYPES).join(", ");

/** Same limit as the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

type Bad = (problem: string) => SafetensorsError;

const isDim = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isDType = (v: unknown): v is SafeDType => typeof v === "string" && Object.hasOwn(DTYPES, v);
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function checkMetadata(v: unknown, bad: Bad): Record<string, string> {
  if (!isObject(v)) throw bad(`"__metadata__" is ${brief(v)}; expected an object mapping strings to strings`);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== "string") throw bad(`"__metadata__" key ${JSON.stringify(k)} is ${brief(val)}; expected a string value`);
  }
  return { ...(v as Record<string, string>) };
}

interface Entry { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }

function parseEntry(name: string, v: unknown, dataLen: number, bad: Bad): Entry {
  const at = `tensor ${JSON.stringify(name)}`;
  if (!isObject(v)) throw bad(`${at}: entry is ${brief(v)}; expected an object with "dtype", "shape", "data_offsets"`);
  const { dtype, shape, data_offsets: off } = v;
  if (typeof dtype !== "string") throw bad(`${at}: "dtype" is ${brief(dtype)}; expected a string`);
  if (!isDType(dtype)) throw bad(`${at}: unknown dtype ${JSON.stringify(dtype)}; supported dtypes: ${SUPPORTED}`);
  if (!Array.isArray(shape) || !shape.every(isDim)) {
    throw bad(`${at}: "shape" is ${brief(shape)}; expected an array of non-negative integers`);
  }
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isDim)) {
    throw bad(`${at}: "data_offsets" is ${brief(off)}; expected [begin, end] with non-negative integers`);
  }
  const [begin, end] = off as [number, number];
  if (begin > end) throw bad(`${at}: data_offsets [${begin}, ${end}] have begin > end; expected begin <= end`);
  if (end > dataLen) {
    throw bad(`${at}: data_offsets [${begin}, ${end}] out of range of the data section ` +
      `(${dataLen} bytes); expected end <= ${dataLen} (file truncated?)`);
  }
  const want = numel(shape) * DTYPES[dtype].BYTES_PER_ELEMENT;
  if (want !== end - begin) {
    throw bad(`${at}: shape/size mismatch: shape [${shape.join(", ")}] of ${dtype} needs ${want} bytes ` +
      `but data_offsets [${begin}, ${end}] span ${end - begin} bytes`);
  }
  return { name, dtype, shape: [...shape], begin, end };
}

/** Tensors must tile the data section exactly: no overlap, no gap, nothing left over. */
function checkCoverage(entries: Entry[], dataLen: number, bad: Bad): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: string | undefined;
  for (const e of sorted) {
    const name = JSON.stringify(e.name);
    if (e.begin < pos) {
      throw bad(`overlapping tensors: ${name} starts at byte ${e.begin} but ${JSON.stringify(prev)} ends at ` +
        `byte ${pos}; expected tensors to cover the data section contiguously without overlap`);
    }
    if (e.begin > pos) {
      throw bad(`gap in the data section: bytes [${pos}, ${e.begin}) before tensor ${name} belong to no ` +
        `tensor; expected tensors to cover the data section contiguously`);
    }
    pos = e.end;
    prev = e.name;
  }
  if (pos !== dataLen) {
    throw bad(`data section has ${dataLen} bytes but the tensors cover only ${pos}; ` +
      `expected the tensors to cover it exactly (trailing bytes)`);
  }
}

/** The header of a safetensors file: every tensor's dtype and shape, and the data section's size. */
export interface SafetensorsHeader {
  tensors: Record<string, { dtype: SafeDType; shape: number[] }>;
  metadata: Record<string, string>;
  /** Bytes of the u64 length plus the JSON header (where the data section starts). */
  headerBytes: number;
  dataBytes: number;
}

interface ParsedHeader { n: number; metadata: Record<string, string>; entries: Entry[] }

/** The JSON header length from the first 8 bytes, checked against the file size. */
function headerLength(first8: Uint8Array, fileLen: number, bad: Bad): number {
  if (fileLen < 8) throw bad(`truncated file: ${fileLen} bytes; expected at least 8 (the u64 header length)`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw bad(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit ` +
      `(header length garbled, or not a safetensors file)`);
  }
  const n = Number(n64);
  if (8 + n > fileLen) {
    throw bad(`header length ${n} is larger than the file (${fileLen} bytes); expected at most ` +
      `${fileLen - 8} (header length garbled, or file truncated)`);
  }
  return n;
}

/** Validates the JSON header (`json`: its n bytes) against a data section of dataLen bytes. */
function parseHeaderJson(json: Uint8Array, dataLen: number, bad: Bad): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    throw bad("header is not valid UTF-8; expected a UTF-8 JSON object");
  }
  let header: unknown;
  try {
    header = parseJsonText(text);
  } catch (e) {
    throw bad(`header is not valid JSON (${(e as Error).message}); expected a JSON object`);
  }
  if (!isObject(header)) throw bad(`header is ${brief(header)}; expected a JSON object`);
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") metadata = checkMetadata(v, bad);
    else entries.push(parseEntry(name, v, dataLen, bad));
  }
  checkCoverage(entries, dataLen, bad);
  return { n: json.length, metadata, entries };
}

/** Tensor data copied out of the data section into fresh, aligned typed arrays. */
function tensorsOf(h: ParsedHeader, data: Uint8Array, bad: Bad): SafetensorsFile {
  const tensors = h.entries.map((e): [string, SafeTensor] => {
    const raw = new Uint8Array(data.subarray(e.begin, e.end)); // copy, offset 0
    if (e.dtype === "BOOL") {
      const i = raw.findIndex((b) => b > 1);
      if (i >= 0) throw bad(`tensor ${JSON.stringify(e.name)}: BOOL element ${i} is byte ${raw[i]}; expected 0 or 1`);
    }
    const Ctor = DTYPES[e.dtype];
    return [e.name, { dtype: e.dtype, shape: e.shape, data: new Ctor(raw.buffer, 0, raw.length / Ctor.BYTES_PER_ELEMENT) }];
  });
  return { tensors: Object.fromEntries(tensors), metadata: h.metadata };
}

/** Parse and fully validate a safetensors image; tensor data is copied into fresh, aligned typed arrays. */
export function decodeSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  const bad: Bad = (problem) => new SafetensorsError(source, problem);
  const n = headerLength(bytes, bytes.length, bad);
  const h = parseHeaderJson(bytes.subarray(8, 8 + n), bytes.length - 8 - n, bad);
  return tensorsOf(h, bytes.subarray(8 + n), bad);
}

function checkTensor(name: string, t: SafeTensor, bad: Bad): void {
  const at = `tensor ${JSON.stringify(name)}`;
  if (name === "") throw bad("tensor name is empty; expected a non-empty name");
  if (name === "__metadata__") throw bad(`tensor name "__metadata__" is reserved for metadata; expected another name`);
  if (!isObject(t)) throw bad(`${at}: expected { dtype, shape, data }`);
  if (!isDType(t.dtype)) throw bad(`${at}: unknown dtype ${brief(t.dtype)}; supported dtypes: ${SUPPORTED}`);
  const Ctor = DTYPES[t.dtype];
  if (!(t.data instanceof Ctor)) {
    throw bad(`${at}: dtype ${t.dtype} needs data as ${Ctor.name}, got ${brief(t.data?.constructor?.name)}`);
  }
  if (!Array.isArray(t.shape) || !t.shape.every(isDim)) {
    throw bad(`${at}: shape ${brief(t.shape)}; expected an array of non-negative integers`);
  }
  if (numel(t.shape) !== t.data.length) {
    throw bad(`${at}: shape [${t.shape.join(", ")}] has ${numel(t.shape)} elements but data has ${t.data.length}`);
  }
  if (t.dtype === "BOOL" && (t.data as Uint8Array).some((b) => b > 1)) {
    throw bad(`${at}: BOOL data must contain only 0 and 1`);
  }
}

/**
 * Serialize tensors (sorted by name, contiguous, little-endian). The header JSON is padded with
 * spaces to a multiple of 8 bytes, so the data section starts 8-aligned, as the reference does.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
  source = "<buffer>",
): Uint8Array {
  const bad: Bad = (problem) => new SafetensorsError(source, problem);
  if (!isObject(tensors)) throw bad(`tensors is ${brief(tensors)}; expected an object mapping names to tensors`);
  // Header entries are written by hand so that the key order is exactly the sorted order.
  const fields: string[] = [];
  if (metadata !== undefined) fields.push(`"__metadata__":${JSON.stringify(checkMetadata(metadata, bad))}`);
  const names = Object.keys(tensors).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    checkTensor(name, t, bad);
    const blob = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + blob.length] };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    blobs.push(blob);
    offset += blob.length;
  }
  const header = new TextEncoder().encode(`{${fields.join(",")}}`);
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw bad(`header is ${padded} bytes; expected at most ${MAX_HEADER_BYTES}`);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, 8 + padded);
  let pos = 8 + padded;
  for (const blob of blobs) {
    out.set(blob, pos);
    pos += blob.length;
  }
  return out;
}

export interface ReadSafetensorsOptions {
  /** Refuse a file larger than this before reading its data (default: no limit beyond the header's). */
  maxBytes?: number;
  /** What maxBytes is, for the error (e.g. "TSFORMER_MAX_MODEL_BYTES = 4 GiB"). */
  what?: string;
  /** Called with the validated header before the data is read: throw to refuse the file. */
  checkHeader?: (header: SafetensorsHeader) => void;
}

/**
 * Read and validate a .safetensors file. Only the header is read before the checks: the file must be a
 * regular file whose size is exactly what the header's offsets promise, within maxBytes.
 */
export async function readSafetensors(file: string, opts: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const bad: Bad = (problem) => new SafetensorsError(file, problem);
  let opened: { fd: number; size: number };
  try {
    opened = openRegular(file);
  } catch (e) {
    const err = e as FileReadError;
    throw bad(err.code ? `cannot read file (${err.code})` : err.problem);
  }
  const { fd, size } = opened;
  try {
    const n = headerLength(readAt(fd, Math.min(8, size), 0), size, bad);
    const h = parseHeaderJson(readAt(fd, n, 8), size - 8 - n, bad);
    opts.checkHeader?.({
      tensors: Object.fromEntries(h.entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])),
      metadata: h.metadata, headerBytes: 8 + n, dataBytes: size - 8 - n,
    });
    if (opts.maxBytes !== undefined && size > opts.maxBytes) {
      throw bad(`is ${formatBytes(size)} (${size} bytes); expected at most ${opts.what ?? formatBytes(opts.maxBytes)}`);
    }
    const data = readAt(fd, size - 8 - n, 8 + n);
    if (data.length !== size - 8 - n) throw bad(`shrank while being read; expected ${size} bytes`);
    return tensorsOf(h, data, bad);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write atomically: validate and encode first, write a temp file in the same directory, fsync,
 * then rename over the target. On failure the temp file is removed and any existing file is untouched.
 */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata, file);
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(tmp, "wx");
    await fh.writeFile(bytes);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new SafetensorsError(file, `write failed (${err.code ?? err.message}); existing file left unchanged`, { cause: e });
  }
  // Persist the rename itself; directories cannot be opened for fsync on every platform.
  const d = await fs.open(dir, "r").catch(() => undefined);
  await d?.sync().catch(() => {});
  await d?.close();
}
