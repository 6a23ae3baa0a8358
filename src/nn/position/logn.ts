// Log-n attention scaling (Su, kexue.fm/archives/8823 "Attention-E", used for length extrapolation in
// posts 11-12 and bojone/rerope): query i, which sees n = i + 1 tokens, is multiplied by
// max(1, ln n / ln L), L the training length, so that the attention's entropy does not grow with n
// past L; inside the training length nothing changes.

/** The per-position scales for positions start .. start + T - 1 (or explicit ones), or null when all are 1. */
export function lognScales(positions: number | Int32Array, T: number, trainLen: number): Float64Array | null {
  const n = typeof positions === "number" ? T : positions.length;
  const s = new Float64Array(n), lnL = Math.log(trainLen);
  let any = false;
  for (let t = 0; t < n; t++) {
    const pos = typeof positions === "number" ? positions + t : positions[t];
    s[t] = Math.max(1, Math.log(pos + 1) / lnL);
    if (s[t] !== 1) any = true;
  }
  return any ? s : null;
}
