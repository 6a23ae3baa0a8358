// Mixed-base RoPE (Su, "Transformer升级之路 11", kexue.fm/archives/9706): RoPE's pair m is digit m of the
// position in base beta = theta^(2/d); extending the range s times gives each digit its own base
// beta * lambda_m with prod lambda = s and lambda_1 >= ... >= lambda_{d/2} >= 1, parameterized as
// lambda_1 ... lambda_m = exp(a m^b), a (d/2)^b = ln s. So frequency j (m = j + 1) is divided by
// exp(a (j+1)^b); b = 1 is NTK-RoPE-fixed, b -> 0 position interpolation; the post's best b is 0.625.

import { baseInvFreq, type RopeScheme } from "./types.js";

export const mixedBase: RopeScheme = {
  about: "mixed-base RoPE (Su post 11): frequency j / exp(a (j+1)^exponent), a (d/2)^exponent = ln factor",
  keys: ["exponent"],
  dynamic: false,
  compute: ({ d, theta, p }) => {
    const b = p.exponent ?? 0.625, a = Math.log(p.factor) / Math.pow(d / 2, b);
    return { invFreq: baseInvFreq(d, theta).map((f, j) => f * Math.exp(-a * Math.pow(j + 1, b))), attentionFactor: 1 };
  },
};
