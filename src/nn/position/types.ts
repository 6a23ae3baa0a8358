// The contract of a RoPE frequency scheme (registry.ts): from the head size, the base theta, the scheme's
// parameters, the training length and (for dynamic schemes) the current sequence length, the d/2 inverse
// frequencies and the attention factor that multiplies cos and sin (HF modeling_rope_utils.py's
// "(inv_freq, attention_factor)" contract, so that HF's rope_scaling types map one to one).

/** The parameters of every scheme (each reads its own; parseRopeScaling checks which are allowed). */
export interface RopeScaling {
  type: string;
  /** Context extension factor s (target length / training length). */
  factor: number;
  /** The length the model was trained at; default: the model's maxSeqLen. */
  originalMaxSeqLen?: number;
  // YaRN (Peng et al. 2023)
  betaFast?: number;
  betaSlow?: number;
  attentionFactor?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
  // Llama 3
  lowFreqFactor?: number;
  highFreqFactor?: number;
  // mixed base (Su, post 11)
  exponent?: number;
}

export interface SchemeInput {
  /** Rotated dimensions (the head size). */
  d: number;
  theta: number;
  p: RopeScaling;
  /** The training length: p.originalMaxSeqLen, else the model's maxSeqLen. */
  trainLen: number;
  /** Positions in use (dynamic schemes). */
  seqLen: number;
}

export interface SchemeOutput { invFreq: Float64Array; attentionFactor: number }

export interface RopeScheme {
  /** One line for --help and errors. */
  about: string;
  /** Parameters it reads besides type and factor. */
  keys: readonly (keyof RopeScaling)[];
  /** Whether the frequencies depend on seqLen (then keys are cached before rotation). */
  dynamic: boolean;
  compute(i: SchemeInput): SchemeOutput;
}

/** theta^(-2t/d), t in [0, d/2) (RoFormer eq. 15), in float64. */
export function baseInvFreq(d: number, theta: number): Float64Array {
  const f = new Float64Array(d / 2);
  for (let t = 0; t < d / 2; t++) f[t] = Math.pow(theta, (-2 * t) / d);
  return f;
}
