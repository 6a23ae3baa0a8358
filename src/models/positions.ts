// Reading a trained model under another position scheme (context extension at inference, as HF's
// rope_scaling override or llama.cpp's --rope-scaling): the same weights, the config's RoPE options
// replaced. Position schemes have no parameters, so the state dict carries over unchanged.

import type { Rerope } from "../nn/position/rotary.js";
import type { RopeScaling } from "../nn/position/types.js";
import { parseModelConfig } from "./config.js";
import { TransformerLM } from "./transformer.js";

/** Each field given replaces the config's; null removes it. */
export interface PositionOptions {
  ropeScaling?: RopeScaling | null;
  rerope?: Rerope | null;
  logn?: boolean | null;
}

export function withPositions(model: TransformerLM, o: PositionOptions): TransformerLM {
  const cfg: Record<string, unknown> = { ...model.config };
  for (const k of ["ropeScaling", "rerope", "logn"] as const) {
    if (o[k] === undefined) continue;
    if (o[k] === null || o[k] === false) delete cfg[k];
    else cfg[k] = o[k];
  }
  const out = new TransformerLM(parseModelConfig(cfg, "position options"), { dropoutGenerator: model.dropoutGenerator });
  out.loadStateDict(model.stateDict());
  out.train(model.training);
  return out;
}
