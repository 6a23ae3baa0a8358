// Flag parsers: each rejects bad input with one message naming the flag and what was expected.

import { InvalidArgumentError } from "commander";
import { PRECISIONS, parsePrecision, type Precision } from "../index.js";

export function intArg(flag: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} expects an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function numArg(flag: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} expects a number in [${min}, ${max}], got '${v}'`);
    }
    return n;
  };
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function positiveArg(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} expects a number > 0, got '${v}'`);
    return n;
  };
}

export const PRECISION_HELP = `mixed precision of the matrix products: ${PRECISIONS.join(", ")} (fp16 with dynamic loss scaling)`;

/** --precision fp32 | bf16 | fp16 (ops/autocast.ts). */
export function precisionArg(v: string): Precision {
  try { return parsePrecision(v, "--precision"); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}
