// Learning-rate schedules as plain JSON configs (saved with the train config) turned into step -> lr.
// "cosine" is nanoGPT's get_lr (karpathy/nanoGPT train.py): linear warmup, cosine decay to minLr, then flat.

export type ScheduleConfig =
  | { kind: "constant"; lr: number }
  | { kind: "cosine"; lr: number; minLr: number; warmupSteps: number; decaySteps: number };

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
 */
export function makeSchedule(cfg: ScheduleConfig): Schedule {
  if (!isNum(cfg.lr) || cfg.lr <= 0) fail("lr", cfg.lr, "a finite number > 0");
  if (cfg.kind === "constant") {
    const { lr } = cfg;
    return () => lr;
  }
  if (cfg.kind !== "cosine") fail("kind", (cfg as { kind: unknown }).kind, `"constant" or "cosine"`);
  const { lr, minLr, warmupSteps: w, decaySteps: d } = cfg;
  if (!isNum(minLr) || minLr < 0 || minLr > lr) fail("minLr", minLr, `a number in [0, lr = ${lr}]`);
  if (!isStep(w)) fail("warmupSteps", w, "an integer >= 0");
  if (!isStep(d) || d <= w) fail("decaySteps", d, `an integer > warmupSteps (${w})`);
  return (step) => {
    if (step < w) return (lr * (step + 1)) / (w + 1);
    if (step > d) return minLr;
    const r = (step - w) / (d - w);
    return minLr + 0.5 * (1 + Math.cos(Math.PI * r)) * (lr - minLr);
  };
}
