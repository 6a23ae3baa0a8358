#!/usr/bin/env node
// The tsformer command line. Each command validates its flags and reports bad input in one line.

import { Command } from "commander";
import { setNativeThreads, version } from "../index.js";
import { printInfo } from "./info.js";
import { collect, intArg, numArg } from "./args.js";
import { formatSummary, runTrain, TRAIN_DEFAULTS, type TrainCliOptions } from "./train.js";
import { presetHelp } from "./presets.js";
import { runEval, runGenerate, type EvalCliOptions, type GenerateCliOptions } from "./generate.js";
import { runStart } from "./start.js";
import { runFlops, type FlopsCliOptions } from "./flops.js";

const program = new Command();
program.name("tsformer").description("Build, train, run and serve Transformer language models on the CPU.")
  .version(version(), "-V, --version", "print the version")
  // A program option, so it is accepted before or after the command name.
  .option("--threads <n>", "native thread pool size (default: TSFORMER_THREADS, else all cores)", intArg("--threads", 1))
  .hook("preAction", () => {
    const { threads } = program.opts<{ threads?: number }>();
    if (threads !== undefined) setNativeThreads(threads);
  });

program.command("info")
  .description("print version, backend, thread count and CPU features")
  .option("--json", "print one JSON object")
  .action((o: { json?: boolean }) => printInfo(Boolean(o.json)));

// Train flags have no commander defaults: a flag not given comes from the checkpoint (--resume) or
// TRAIN_DEFAULTS, so runTrain can tell what the user asked for.
const d = TRAIN_DEFAULTS;
program.command("train")
  .description("train a TransformerLM on a text file (character-level tokenizer)")
  .option("--data <file>", `training text, UTF-8 (90% train / 10% validation; default ${d.data})`)
  .option("--out <dir>", `run directory: checkpoint-<step>/, last, best, metrics.jsonl, loss.svg (default ${d.out})`)
  .option("--overwrite", "replace the run already in --out (its checkpoints and metrics are deleted)")
  .option("--config <file>", "model config JSON; missing fields from its \"preset\", vocabSize from the tokenizer")
  .option("--preset <name>", "model config preset (see below; size flags override it)")
  .option("--d-model <n>", `model width (default ${d.dModel})`, intArg("--d-model", 1))
  .option("--n-layers <n>", `layers (default ${d.nLayers})`, intArg("--n-layers", 1))
  .option("--n-heads <n>", `attention heads (default ${d.nHeads})`, intArg("--n-heads", 1))
  .option("--block <n>", "training context length (default: the model's maxSeqLen)", intArg("--block", 1))
  .option("--batch <n>", `sequences per micro-batch (default ${d.batch})`, intArg("--batch", 1))
  .option("--accum <n>", `gradient accumulation steps (default ${d.accum})`, intArg("--accum", 1))
  .option("--steps <n>", `optimizer steps (default ${d.steps})`, intArg("--steps", 0))
  .option("--lr <x>", `peak learning rate (default ${d.lr})`, numArg("--lr", 0))
  .option("--min-lr <x>", "final learning rate (default lr/10)", numArg("--min-lr", 0))
  .option("--warmup <n>", `linear warmup steps (default ${d.warmup})`, intArg("--warmup", 0))
  .option("--dropout <p>", `dropout probability (default ${d.dropout})`, numArg("--dropout", 0, 0.99))
  .option("--eval-interval <n>", `estimate losses every n steps (default ${d.evalInterval})`, intArg("--eval-interval", 1))
  .option("--eval-iters <n>", `batches per loss estimate (default ${d.evalIters})`, intArg("--eval-iters", 1))
  .option("--ckpt-interval <n>", `checkpoint every n steps, 0 = at the end (default ${d.ckptInterval})`, intArg("--ckpt-interval", 0))
  .option("--save-total-limit <n>", "keep the newest n checkpoints, never deleting the best (default 0 = all)", intArg("--save-total-limit", 0))
  .option("--seed <n>", `random seed (default ${d.seed})`, intArg("--seed", 0))
  .option("--sample-tokens <n>", `characters to sample at the end (default ${d.sampleTokens})`, intArg("--sample-tokens", 0))
  .option("--resume <dir>", "continue a run exactly: a checkpoint or run directory (model, tokenizer, data, run directory from it)")
  .option("--init-from <model>", "start a new run from a trained model's weights (fresh optimizer and schedule)")
  .option("--json", "print the summary as one JSON object")
  .addHelpText("after", `\nPresets (--preset, or "preset" in a --config file):\n${presetHelp()}`)
  .action(async (o: TrainCliOptions & { json?: boolean }) => {
    const { json, ...opts } = o;
    const { summary, sample, runDir } = await runTrain(opts);
    if (json) { console.log(JSON.stringify(summary)); return; }
    console.log(`\n${formatSummary(summary, runDir)}`);
    console.log(`\n-- sample (temperature 0.8, top-k 40) --\n${sample}`);
  });

program.command("generate")
  .description("generate text from a checkpoint directory or a llama2.c .bin")
  .requiredOption("--model <path>", "checkpoint directory or llama2.c .bin")
  .option("--tokenizer <file>", "llama2.c tokenizer .bin (default: tok512.bin beside a .bin model)")
  .option("--prompt <text>", "prompt", "")
  .option("--max-new-tokens <n>", "tokens to generate", intArg("--max-new-tokens", 1), 200)
  .option("--temperature <x>", "0 = greedy", numArg("--temperature", 0), 0.8)
  .option("--top-k <n>", "keep the k most likely tokens (0 = off)", intArg("--top-k", 0), 0)
  .option("--top-p <x>", "nucleus sampling threshold", numArg("--top-p", 0, 1), 1)
  .option("--repetition-penalty <x>", "CTRL repetition penalty (1 = off)", numArg("--repetition-penalty", 0), 1)
  .option("--seed <n>", "sampling seed", intArg("--seed", 0), 0)
  .option("--stop <text>", "stop string (repeatable)", collect, [])
  .action(async (o: GenerateCliOptions) => { await runGenerate(o); });

program.command("eval")
  .description("loss and perplexity of a model on a text file")
  .requiredOption("--model <path>", "checkpoint directory or llama2.c .bin")
  .requiredOption("--text <file>", "text to score")
  .option("--tokenizer <file>", "llama2.c tokenizer .bin")
  .option("--logprobs <file>", "write per-token log-probabilities as JSON")
  .action(async (o: EvalCliOptions) => { console.log(JSON.stringify(await runEval(o))); });

program.command("start")
  .description("the main job on embedded defaults (what `npm start` runs)")
  .action(runStart);

program.command("flops")
  .description("forward FLOPs per layer (attention scores, projections, FFN) and the length T* from which attention dominates")
  .requiredOption("--config <file>", "model config JSON")
  .option("--seq <n>", "sequence length (default: the config's maxSeqLen)", intArg("--seq", 1))
  .option("--json", "print one JSON object")
  .action((o: FlopsCliOptions) => { runFlops(o); });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`tsformer: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
