// `tsformer train`: train a TransformerLM on a text file with a character-level tokenizer (or a
// llama2.c tokenizer), writing checkpoints, metrics.jsonl and loss.svg to the run directory.

import { existsSync, readFileSync } from "node:fs";
import { CharTokenizer, RandomGenerator, TokenDataset, TransformerLM, dataPath, generate, gpt2Config, parseModelConfig, train, type ModelConfig, type TrainSummary } from "../index.js";

export interface TrainCliOptions {
  data: string;
  out: string;
  config?: string;
  dModel: number; nLayers: number; nHeads: number; block: number;
  batch: number; steps: number; lr: number; minLr?: number; warmup: number;
  accum: number; evalInterval: number; evalIters: number; ckptInterval: number;
  seed: number; dropout: number; resume?: string; sampleTokens: number;
}

// The embedded defaults (what `npm start` trains): the least-compute config that reached validation
// loss <= 1.70 in the PyTorch search of scripts/golden/train_ref.md (d 96, 3 layers, 3200 steps).
export const TRAIN_DEFAULTS = {
  data: "data/tinyshakespeare.txt", out: "runs/shakespeare-char",
  dModel: 96, nLayers: 3, nHeads: 4, block: 64, batch: 16, steps: 3200, lr: 4e-3, warmup: 100,
  accum: 1, evalInterval: 800, evalIters: 40, ckptInterval: 800, seed: 1337, dropout: 0, sampleTokens: 300,
};

/** A path as given, or else the bundled file it names ("data/tinyshakespeare.txt"). */
export function bundled(file: string): string {
  return existsSync(file) || !file.startsWith("data/") ? file : dataPath(file.slice("data/".length));
}

function modelConfig(o: TrainCliOptions, vocabSize: number): ModelConfig {
  if (o.config) {
    if (!existsSync(o.config)) throw new Error(`--config ${o.config} does not exist`);
    let raw: unknown;
    try { raw = JSON.parse(readFileSync(o.config, "utf8")); } catch (e) { throw new Error(`--config ${o.config} is not valid JSON: ${(e as Error).message}`); }
    const cfg = parseModelConfig(raw, o.config);
    if (cfg.vocabSize !== vocabSize) throw new Error(`${o.config}: vocabSize ${cfg.vocabSize} does not match the tokenizer's ${vocabSize}`);
    return cfg;
  }
  return gpt2Config({ vocabSize, dModel: o.dModel, nLayers: o.nLayers, nHeads: o.nHeads, maxSeqLen: o.block, dropout: o.dropout });
}

export async function runTrain(o: TrainCliOptions, log = console.log): Promise<{ summary: TrainSummary; sample: string; model: TransformerLM }> {
  const dataFile = bundled(o.data);
  if (!existsSync(dataFile)) throw new Error(`--data ${o.data} does not exist: expected a UTF-8 text file`);
  const text = readFileSync(dataFile, "utf8");
  const tok = CharTokenizer.fromText(text);
  const cfg = modelConfig(o, tok.vocabSize);
  if (o.block > cfg.maxSeqLen) throw new Error(`--block ${o.block} exceeds the model's maxSeqLen ${cfg.maxSeqLen}`);
  const { train: trainSet, val } = new TokenDataset(Int32Array.from(tok.encode(text)), dataFile).split(0.1);
  const model = new TransformerLM(cfg, { generator: new RandomGenerator(o.seed), dropoutGenerator: new RandomGenerator(o.seed + 7) });
  log(`model: ${cfg.nLayers} layers, d=${cfg.dModel}, ${cfg.nHeads} heads, context ${cfg.maxSeqLen}, vocab ${cfg.vocabSize}: ${(model.numParameters() / 1e6).toFixed(3)}M parameters`);
  log(`data: ${dataFile}: ${trainSet.length} train / ${val.length} val tokens; run dir ${o.out}`);
  const summary = await train({
    model, modelConfig: cfg, train: trainSet, val, runDir: o.out,
    batchSize: o.batch, blockSize: o.block, maxSteps: o.steps, accumSteps: o.accum,
    schedule: { kind: "cosine", lr: o.lr, minLr: o.minLr ?? o.lr / 10, warmupSteps: Math.min(o.warmup, Math.floor(o.steps / 2)), decaySteps: Math.max(o.steps, 1) },
    // beta2 0.99 is explicit: nanoGPT's shakespeare-char preset (AdamW's own default is torch's 0.999).
    optim: { kind: "adamw", weightDecay: 0.1, beta1: 0.9, beta2: 0.99 },
    evalInterval: o.evalInterval, evalIters: o.evalIters, ckptInterval: o.ckptInterval, seed: o.seed,
    resume: o.resume, extraFiles: { "tokenizer.json": tok.toJSON() },
  });
  const prompt = tok.encode("\n");
  const sample = tok.decode(generate(model, prompt, { maxNewTokens: o.sampleTokens, temperature: 0.8, topK: 40, seed: o.seed }).ids);
  return { summary, sample, model };
}
