// Bounded reads of files from outside. Every read opens the path once, refuses anything but a regular
// file (a device such as /dev/zero or a FIFO has no size to check and may never end), compares the size
// with what the caller can accept, and reads at most that many bytes. The size limits are named here.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";

export class FileReadError extends Error {
  constructor(readonly file: string, readonly problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = "FileReadError";
  }

  /** The system error code (ENOENT, EACCES, ...) when the file could not be opened or read. */
  get code(): string | undefined {
    return (this.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

const GiB = 1024 ** 3;
/** Default of TSFORMER_MAX_MODEL_BYTES: the parameter bytes a model may take. */
export const DEFAULT_MAX_MODEL_BYTES = 4 * GiB;
/** Tokenizer files (llama2.c .bin, tokenizer.json): real ones are a few MB. */
export const MAX_TOKENIZER_BYTES = 256 * 1024 ** 2;
/** Small JSON files (config.json, trainer_state.json). */
export const MAX_JSON_BYTES = 64 * 1024 ** 2;

/** The model size limit: TSFORMER_MAX_MODEL_BYTES (bytes) or 4 GiB. */
export function maxModelBytes(): number {
  const raw = process.env.TSFORMER_MAX_MODEL_BYTES;
  if (raw === undefined || raw === "") return DEFAULT_MAX_MODEL_BYTES;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`TSFORMER_MAX_MODEL_BYTES is ${JSON.stringify(raw)}; expected a positive integer number of bytes`);
  return n;
}

/** "4 GiB", "12.5 MiB", "300 bytes". */
export function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} bytes` : `${Number(n.toFixed(1))} ${units[i]}`;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** An open regular file: its descriptor and size. Close it with `closeSync(fd)`. */
export function openRegular(file: string, label = file): { fd: number; size: number } {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer must not hang before the check below refuses it.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new FileReadError(label, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new FileReadError(label, `is ${kindOf(st)}; expected a regular file`);
  }
  return { fd, size: st.size };
}

/** Reads `length` bytes at `position`, stopping early only at end of file. */
export function readAt(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, out, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? out : out.subarray(0, got);
}

export interface BoundedReadOptions {
  /** Refuse a larger file before reading it. */
  maxBytes: number;
  /** What the limit is, for the error (default "the <size> limit"). */
  what?: string;
  /** How errors name the file, e.g. "--data corpus.txt" (default: the path). */
  label?: string;
}

/** The whole file, refused before reading when it is larger than maxBytes. A file that grows while read is cut at its stat size. */
export function readFileBounded(file: string, o: BoundedReadOptions): Uint8Array {
  const label = o.label ?? file;
  const { fd, size } = openRegular(file, label);
  try {
    if (size > o.maxBytes) throw new FileReadError(label, `is ${formatBytes(size)} (${size} bytes); expected at most ${o.what ?? `the ${formatBytes(o.maxBytes)} limit`}`);
    const bytes = readAt(fd, size, 0);
    if (bytes.length !== size) throw new FileReadError(label, `shrank while being read (${bytes.length} of ${size} bytes)`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** The first `n` bytes (fewer if the file is shorter) and the file size. */
export function readFileHead(file: string, n: number, label = file): { head: Uint8Array; size: number } {
  const { fd, size } = openRegular(file, label);
  try {
    return { head: readAt(fd, Math.min(n, size), 0), size };
  } finally {
    closeSync(fd);
  }
}

/** A JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** True when v nests no deeper than `depth` arrays / objects (checked without deep recursion). */
export function shallow(v: unknown, depth: number): boolean {
  if (typeof v !== "object" || v === null) return true;
  if (depth === 0) return false;
  return Object.values(v).every((x) => shallow(x, depth - 1));
}

// JSON.stringify prints NaN and the infinities (JSON.parse reads 1e999 as Infinity) as null: brief marks
// them with this prefix in the replacer and puts them back as written.
const NON_FINITE = "\u0000nonfinite:";

/**
 * A value from an untrusted file, shown briefly in an error: its JSON cut at 60 characters, with NaN,
 * Infinity and -Infinity shown as such; a value nested too deeply to print (JSON.stringify overflows
 * the stack) is named as such.
 */
export function brief(v: unknown): string {
  if (v === undefined) return "missing";
  let s: string;
  try {
    s = (JSON.stringify(v, (_, x) => (typeof x === "number" && !Number.isFinite(x) ? `${NON_FINITE}${x}` : x)) ?? String(v))
      .replace(/"\\u0000nonfinite:(-?Infinity|NaN)"/g, "$1");
  } catch {
    return Array.isArray(v) ? "a deeply nested array" : "a deeply nested object";
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * JSON text parsed, a leading byte-order mark ignored. A syntax error keeps to one line: V8 quotes the
 * text around the error, newlines and all, so those are escaped and the message is cut at 200 chars.
 */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    const msg = (e as Error).message.replace(/[\r\n\t]/g, (c) => JSON.stringify(c).slice(1, -1));
    throw new SyntaxError(msg.length > 200 ? `${msg.slice(0, 200)}...` : msg);
  }
}

/** A small JSON file, parsed; errors name the file. */
export function readJsonFile(file: string, maxBytes = MAX_JSON_BYTES): unknown {
  const bytes = readFileBounded(file, { maxBytes, what: `the ${formatBytes(maxBytes)} limit for JSON files` });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FileReadError(file, "is not valid UTF-8; expected a UTF-8 JSON file");
  }
  try {
    return parseJsonText(text);
  } catch (e) {
    throw new FileReadError(file, `is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
