// YaRN (Peng et al. 2023, §3.2-3.4; HF rope_type "yarn", _compute_yarn_parameters): per frequency, a ramp
// between interpolation (f / s) and extrapolation (f) by the number of rotations the frequency makes over
// the original length (NTK-by-parts: below betaSlow rotations interpolate, above betaFast keep), and an
// attention temperature sqrt(1/t) = 0.1 ln(s) + 1 applied as a factor on cos and sin.

import { baseInvFreq, type RopeScheme } from "./types.js";

/** 0.1 m ln(s) + 1 for s > 1, else 1 (YaRN eq. 22 with DeepSeek's mscale m). */
function mscaleOf(s: number, m = 1): number {
  return s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1;
}

/** The dimension index whose frequency makes `rotations` turns over L positions (YaRN eq. 17 inverted). */
function correctionDim(rotations: number, d: number, theta: number, L: number): number {
  return (d * Math.log(L / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
}

export const yarn: RopeScheme = {
  about: "YaRN (Peng et al. 2023): NTK-by-parts ramp + attention temperature",
  keys: ["betaFast", "betaSlow", "attentionFactor", "mscale", "mscaleAllDim", "truncate"],
  dynamic: false,
  compute: ({ d, theta, p, trainLen }) => {
    const s = p.factor;
    const attentionFactor = p.attentionFactor ?? (p.mscale && p.mscaleAllDim ? mscaleOf(s, p.mscale) / mscaleOf(s, p.mscaleAllDim) : mscaleOf(s));
    let low = correctionDim(p.betaFast ?? 32, d, theta, trainLen), high = correctionDim(p.betaSlow ?? 1, d, theta, trainLen);
    if (p.truncate ?? true) { low = Math.floor(low); high = Math.ceil(high); }
    low = Math.max(low, 0);
    high = Math.min(high, d - 1);
    if (low === high) high += 0.001;  // no division by zero in the ramp
    const invFreq = baseInvFreq(d, theta).map((f, t) => {
      const extrapolate = 1 - Math.min(1, Math.max(0, (t - low) / (high - low)));
      return (f / s) * (1 - extrapolate) + f * extrapolate;
    });
    return { invFreq, attentionFactor };
  },
};
