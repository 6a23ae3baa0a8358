// Learning-rate schedules as plain JSON configs (saved with the train config) turned into step -> lr.
// "cosine" is nanoGPT's get_lr (karpathy/nanoGPT train.py): linear warmup, cosine decay to minLr, then flat.
// "wsd" is warmup-stable-decay (Hu et al. 2024, MiniCPM §4.1; linear cooldown as Hägele et al. 2024): the
// peak lr held until decayStart, then a linear fall to minLr at decaySteps.

export type ScheduleConfig =
  | { kind: "constant"; lr: number; warmupSteps?: number }
  | { kind: "cosine"; lr: number; minLr: number; warmupSteps: number; decaySteps: number }
  | { kind: "wsd"; lr: number; minLr: number; warmupSteps: number; decayStart: number; decaySteps: number };

export type Schedule = (step: number) => number;

function fail(field: string, v: unknown, expected: string): never {
  throw new RangeError(`schedule.${field} is ${JSON.stringify(v)}; expected ${expected}`);
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStep = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Validate a schedule config and build it. For "cosine", with step counted from 0:
 *   step < warmup:          lr * (step + 1) / (warmup + 1)
 *   step > decaySteps:      minLr
 *   otherwise:              minLr + 0.5 (1 + cos(pi r)) (lr - minLr),  r = (step - warmup) / (decaySteps - warmup)
 * "constant" has the same (optional) warmup. "wsd" has the same warmup and end, lr until decayStart, and in
 * between minLr + (1 - r) (lr - minLr), r = (step - decayStart) / (decaySteps - decayStart).
 */
export function makeSchedule(cfg: ScheduleConfig): Schedule {
  if (!isNum(cfg.lr) || cfg.lr <= 0) fail("lr", cfg.lr, "a finite number > 0");
  if (cfg.kind === "constant") {
    const { lr, warmupSteps: w = 0 } = cfg;
    if (!isStep(w)) fail("warmupSteps", w, "an integer >= 0");
    return (step) => (step < w ? (lr * (step + 1)) / (w + 1) : lr);
  }
  if (cfg.kind !== "cosine" && cfg.kind !== "wsd") fail("kind", (cfg as { kind: unknown }).kind, `"constant", "cosine" or "wsd"`);
  const { lr, minLr, warmupSteps: w, decaySteps: d } = cfg;
  if (!isNum(minLr) || minLr < 0 || minLr > lr) fail("minLr", minLr, `a number in [0, lr = ${lr}]`);
  if (!isStep(w)) fail("warmupSteps", w, "an integer >= 0");
  // the decay begins after warmup: at decayStart for wsd, right away for cosine
  const s0 = cfg.kind === "wsd" ? cfg.decayStart : w;
  if (cfg.kind === "wsd" && (!isStep(s0) || s0 < w)) fail("decayStart", s0, `an integer >= warmupSteps (${w})`);
  if (!isStep(d) || d <= s0) fail("decaySteps", d, `an integer > ${cfg.kind === "wsd" ? "decayStart" : "warmupSteps"} (${s0})`);
  const shape = cfg.kind === "wsd" ? (r: number) => 1 - r : (r: number) => 0.5 * (1 + Math.cos(Math.PI * r));
  return (step) => {
    if (step < w) return (lr * (step + 1)) / (w + 1);
    if (step > d) return minLr;
    if (step < s0) return lr;
    return minLr + shape((step - s0) / (d - s0)) * (lr - minLr);
  };
}
