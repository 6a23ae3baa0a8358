// Weights read from a file must be finite: a NaN or an infinity is corruption (or a diverged run), and
// it would reach every logit silently. One check for every loader (tsformer checkpoints, HF
// safetensors, llama2.c .bin); 16-bit floats are checked on their bits, before widening.

/** The exponent bits of the 16-bit floats: all ones is an infinity (mantissa 0) or a NaN. */
const EXP16: Record<string, number> = { BF16: 0x7f80, F16: 0x7c00 };

/** The first non-finite element of `data` (raw bits when `dtype` is "BF16" or "F16"), or null. */
export function firstNonFinite(data: ArrayLike<number | bigint>, dtype?: string): { index: number; value: number } | null {
  const exp = dtype === undefined ? undefined : EXP16[dtype];
  for (let i = 0; i < data.length; i++) {
    const x = Number(data[i]);
    if (exp === undefined ? !Number.isFinite(x) : (x & exp) === exp) {
      return { index: i, value: exp === undefined ? x : x & (exp ^ 0x7fff) ? NaN : x & 0x8000 ? -Infinity : Infinity };
    }
  }
  return null;
}

/** What a corrupt weights file is told, after "tensor <name> holds <value> at element <i>; ". */
export const EXPECTED_FINITE = "expected finite weights (the file is corrupt, or was saved from a diverged run)";
