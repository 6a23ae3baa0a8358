// Llama 3.1's frequency scaling (HF rope_type "llama3", _compute_llama3_parameters): wavelengths longer
// than L / lowFreqFactor are interpolated by the factor, shorter than L / highFreqFactor kept, and the
// band between blends the two linearly in L / wavelength (L: the original context length).

import { baseInvFreq, type RopeScheme } from "./types.js";

export const llama3: RopeScheme = {
  about: "Llama 3 frequency scaling: interpolate long wavelengths, keep short ones, blend between",
  keys: ["lowFreqFactor", "highFreqFactor"],
  dynamic: false,
  compute: ({ d, theta, p, trainLen }) => {
    const lo = p.lowFreqFactor ?? 1, hi = p.highFreqFactor ?? 4;
    const invFreq = baseInvFreq(d, theta).map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < trainLen / hi) return f;
      if (wavelen > trainLen / lo) return f / p.factor;
      const smooth = (trainLen / wavelen - lo) / (hi - lo);
      return (1 - smooth) * (f / p.factor) + smooth * f;
    });
    return { invFreq, attentionFactor: 1 };
  },
};
