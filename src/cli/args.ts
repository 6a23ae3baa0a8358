// Flag parsers: each rejects bad input with one message naming the flag and what was expected.

import { InvalidArgumentError } from "commander";
import { PRECISIONS, parsePrecision, type Precision, type ScheduleConfig } from "../index.js";

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

export const LR_SCHEDULES = ["cosine", "wsd", "constant"] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];
/** --lr-schedule's help; minLr: what the final lr is called by that command. */
export const lrScheduleHelp = (minLr: string): string =>
  `learning rate after --warmup: cosine (to ${minLr} at the last step), wsd (warmup-stable-decay: held, then linear to ${minLr} over the last --cooldown steps) or constant (default cosine)`;

/** --lr-schedule cosine | wsd | constant. */
export function lrScheduleArg(v: string): LrSchedule {
  if (!(LR_SCHEDULES as readonly string[]).includes(v)) throw new InvalidArgumentError(`--lr-schedule expects ${LR_SCHEDULES.join(", ")}, got '${v}'`);
  return v as LrSchedule;
}

/** The schedule of train / finetune flags; warmup is capped at half the steps. wsd cools down over the last
 * `cooldown` steps (default a fifth of them). */
export function cliSchedule(o: { kind?: LrSchedule; lr: number; minLr: number; warmup: number; steps: number; cooldown?: number }): ScheduleConfig {
  const kind = o.kind ?? "cosine", warmupSteps = Math.min(o.warmup, Math.floor(o.steps / 2)), decaySteps = Math.max(o.steps, 1);
  if (o.cooldown !== undefined && kind !== "wsd") throw new Error(`--cooldown applies to --lr-schedule wsd, not ${kind}`);
  if (kind === "constant") return { kind, lr: o.lr, warmupSteps };
  if (kind === "cosine") return { kind, lr: o.lr, minLr: o.minLr, warmupSteps, decaySteps };
  const cooldown = o.cooldown ?? Math.max(1, Math.floor(o.steps / 5));
  if (cooldown > decaySteps - warmupSteps) throw new Error(`--cooldown ${cooldown} exceeds the ${decaySteps - warmupSteps} steps after warmup`);
  return { kind, lr: o.lr, minLr: o.minLr, warmupSteps, decayStart: decaySteps - cooldown, decaySteps };
}
