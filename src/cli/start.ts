// `npm start`: the main job on embedded defaults — train a small character-level GPT on the bundled
// Shakespeare (progress bar, ETA), print a sample, then let the real pretrained stories260K tell a story.

import { dataPath } from "../index.js";
import { runTrain, TRAIN_DEFAULTS } from "./train.js";
import { runGenerate } from "./generate.js";

export async function runStart(): Promise<void> {
  console.log("== 1/2: training a character-level GPT on Tiny Shakespeare ==");
  const { summary, sample } = await runTrain({ ...TRAIN_DEFAULTS, out: "runs/start" });
  console.log(`\ntrained ${summary.finalStep} steps in ${summary.seconds.toFixed(0)} s (${summary.tokensPerSec.toFixed(0)} tokens/s)`);
  console.log(`validation loss: ${summary.valLoss?.toFixed(4)} nats (train ${summary.trainLoss.toFixed(4)})`);
  console.log(`loss curve: runs/start/loss.svg, metrics: runs/start/metrics.jsonl, checkpoint: runs/start/checkpoint`);
  console.log("\n-- sample (temperature 0.8, top-k 40) --");
  console.log(sample);
  console.log("\n== 2/2: stories260K (llama2.c, pretrained on TinyStories) ==");
  await runGenerate({
    model: dataPath("stories260K.bin"), prompt: "Once upon a time", maxNewTokens: 200,
    temperature: 0.8, topK: 0, topP: 0.9, repetitionPenalty: 1, seed: 42, stop: [],
  });
}
