// Text inputs (training data, eval text): a regular file of bounded size holding UTF-8 text. Binary
// files are refused instead of being trained on or scored: a NUL byte never occurs in text, and
// invalid UTF-8 is an error, not U+FFFD replacement characters.

import { FileReadError, formatBytes, readFileBounded } from "./read.js";

/** Default size limit of readTextFile. */
export const MAX_TEXT_BYTES = 1024 ** 3;

export interface ReadTextOptions {
  /** Refuse larger files (default 1 GiB). */
  maxBytes?: number;
  /** How errors name the file, e.g. "--data corpus.txt" (default: the path). */
  label?: string;
}

/** Reads a UTF-8 text file; a binary or non-UTF-8 file, a device or a too-large file is a clear error. */
export function readTextFile(file: string, opts: ReadTextOptions = {}): string {
  const maxBytes = opts.maxBytes ?? MAX_TEXT_BYTES;
  const label = opts.label ?? file;
  const bytes = readFileBounded(file, { maxBytes, what: `${formatBytes(maxBytes)} of text`, label });
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new FileReadError(label, `has a NUL byte at offset ${nul}: a binary file; expected UTF-8 text`);
  try {
    // ignoreBOM: keep a leading U+FEFF as text, as every other character.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new FileReadError(label, `is not valid UTF-8 (at or after byte ${firstInvalidUtf8(bytes)}); expected UTF-8 text`);
  }
}

/** Offset of the first byte that starts an invalid UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  // Binary search on prefixes: a prefix that decodes in streaming mode (a trailing incomplete
  // sequence is held back, not an error) holds no invalid sequence.
  let lo = 0, hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  // The prefix may end in the incomplete start of the bad sequence: report where that sequence begins.
  for (let k = lo - 1; k >= Math.max(0, lo - 3); k--) {
    if (b[k] >= 0xc0) return k + (b[k] >= 0xf0 ? 4 : b[k] >= 0xe0 ? 3 : 2) > lo ? k : lo;
    if (b[k] < 0x80) break;
  }
  return lo;
}
