// Dynamic NTK scaling (emozilla 2023; HF rope_type "dynamic", _compute_dynamic_ntk_parameters): the NTK
// base grows with the current length n past the training length L:
// theta' = theta * (s n / L - (s - 1))^(d/(d-2)), n = max(seqLen, L); at n <= L it is plain RoPE.

import { baseInvFreq, type RopeScheme } from "./types.js";

export const dynamic: RopeScheme = {
  about: "dynamic NTK (HF \"dynamic\"): the NTK base from the current length",
  keys: [],
  dynamic: true,
  compute: ({ d, theta, p, trainLen, seqLen }) => {
    const n = Math.max(seqLen, trainLen);
    return { invFreq: baseInvFreq(d, theta * Math.pow((p.factor * n) / trainLen - (p.factor - 1), d / (d - 2))), attentionFactor: 1 };
  },
};
