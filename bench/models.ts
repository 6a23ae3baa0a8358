// The benchmark model configurations of the LM issue (GPT-2 layout, pre-LN, GELU, tied head, dropout 0).

import { gpt2Config, type ModelConfig } from "../src/models/config.js";

export interface BenchModel { name: string; V: number; L: number; H: number; d: number; T: number; B: number }

export const CONFIG_A: BenchModel = { name: "A", V: 65, L: 6, H: 6, d: 384, T: 256, B: 8 };
export const CONFIG_B: BenchModel = { name: "B", V: 512, L: 4, H: 4, d: 128, T: 128, B: 16 };

export function toModelConfig(c: BenchModel): ModelConfig {
  return gpt2Config({ vocabSize: c.V, dModel: c.d, nLayers: c.L, nHeads: c.H, maxSeqLen: c.T, dropout: 0 });
}
