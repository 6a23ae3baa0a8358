// NTK-aware scaled RoPE (bloc97 2023; Su, "Transformer升级之路 10", kexue.fm/archives/9675): RoPE is a
// base-theta positional number system; raising the base to theta * s^(d/(d-2)) makes the lowest frequency
// interpolate by s while the highest is unchanged (extrapolation for the high digits).

import { baseInvFreq, type RopeScheme } from "./types.js";

export const ntk: RopeScheme = {
  about: "NTK-aware scaling (bloc97; Su post 10): base * factor^(d/(d-2))",
  keys: [],
  dynamic: false,
  compute: ({ d, theta, p }) => ({ invFreq: baseInvFreq(d, theta * Math.pow(p.factor, d / (d - 2))), attentionFactor: 1 }),
};
