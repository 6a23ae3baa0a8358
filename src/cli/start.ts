// `npm start`: the main job on embedded defaults — train a small character-level GPT on the bundled
// Shakespeare (progress bar, ETA), print a sample, then let the real pretrained stories260K tell a story.

import { dataPath } from "../index.js";
import { formatSummary, runTrain, TRAIN_DEFAULTS } from "./train.js";
import { runGenerate } from "./generate.js";

/** npm start's own demo directory: replaced on every run (it is the README's main command, run again and again). */
export const START_DIR = "runs/start";

export async function runStart(): Promise<void> {
  console.log("== 1/2: training a character-level GPT on Tiny Shakespeare ==");
  console.log(`(${START_DIR} is npm start's demo directory: a run already there is replaced; \`tsformer train --out DIR\` never replaces one without --overwrite)`);
  const { summary, sample, runDir } = await runTrain({ ...TRAIN_DEFAULTS, out: START_DIR, overwrite: true });
  console.log(`\n${formatSummary(summary, runDir)}`);
  console.log("\n-- sample (temperature 0.8, top-k 40) --");
  console.log(sample);
  console.log("\n== 2/2: stories260K (llama2.c, pretrained on TinyStories) ==");
  await runGenerate({
    model: dataPath("stories260K.bin"), prompt: "Once upon a time", maxNewTokens: 200,
    temperature: 0.8, topK: 0, topP: 0.9, repetitionPenalty: 1, seed: 42, stop: [],
  });
}
