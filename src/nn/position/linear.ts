// Position interpolation (Chen et al. 2023, eq. 4): positions divided by the factor s, i.e. every
// frequency divided by s; HF rope_type "linear".

import { baseInvFreq, type RopeScheme } from "./types.js";

export const linear: RopeScheme = {
  about: "position interpolation (Chen et al. 2023): every frequency / factor",
  keys: [],
  dynamic: false,
  compute: ({ d, theta, p }) => ({ invFreq: baseInvFreq(d, theta).map((f) => f / p.factor), attentionFactor: 1 }),
};
