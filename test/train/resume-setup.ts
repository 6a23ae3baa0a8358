// Shared setup of the exact-resume test: the same model, data and options in the test and in the child.

import { gpt2Config } from "../../src/models/config.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { RandomGenerator } from "../../src/tensor/rng.js";
import { TokenDataset } from "../../src/data/batches.js";
import type { TrainOptions } from "../../src/train/trainer.js";

export const CHECKPOINT_EVERY = 5;
/** The child blocks (as if stuck) after this step, so it is always killed mid-run. */
export const CHILD_BLOCKS_AFTER = 7;

export function resumeOptions(runDir: string): TrainOptions {
  const config = gpt2Config({ vocabSize: 17, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 8, dropout: 0.1 });
  const model = new TransformerLM(config, { generator: new RandomGenerator(3), dropoutGenerator: new RandomGenerator(4) });
  const ids = new Int32Array(600);
  new RandomGenerator(11).randint(ids, 17);
  const { train, val } = new TokenDataset(ids, "synthetic").split(0.2);
  return {
    model, modelConfig: config, train, val, runDir,
    batchSize: 4, blockSize: 8, maxSteps: 12, accumSteps: 2,
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 3, decaySteps: 12 },
    gradClip: 0.5, evalInterval: 4, evalIters: 2, ckptInterval: CHECKPOINT_EVERY, seed: 99,
    extraFiles: { "tokenizer.json": { kind: "synthetic", vocabSize: 17 } },
    progress: false,
  };
}
