#!/usr/bin/env node
// The tsformer command line. Each command validates its flags and reports bad input in one line.

import { Command } from "commander";
import { printInfo } from "./info.js";
import { collect, intArg, numArg } from "./args.js";
import { runTrain, TRAIN_DEFAULTS, type TrainCliOptions } from "./train.js";
import { runEval, runGenerate, type EvalCliOptions, type GenerateCliOptions } from "./generate.js";
import { runStart } from "./start.js";
import { runFlops, type FlopsCliOptions } from "./flops.js";

const program = new Command();
program.name("tsformer").description("Build, train, run and serve Transformer language models on the CPU.");

program.command("info")
  .description("print version, backend, thread count and CPU features")
  .option("--json", "print one JSON object")
  .action((o: { json?: boolean }) => printInfo(Boolean(o.json)));

const d = TRAIN_DEFAULTS;
program.command("train")
  .description("train a GPT-2-layout TransformerLM on a text file (character-level tokenizer)")
  .option("--data <file>", "training text (90% train / 10% validation)", d.data)
  .option("--out <dir>", "run directory: checkpoint/, metrics.jsonl, loss.svg", d.out)
  .option("--config <file>", "model config JSON (overrides the size flags)")
  .option("--d-model <n>", "model width", intArg("--d-model", 1), d.dModel)
  .option("--n-layers <n>", "layers", intArg("--n-layers", 1), d.nLayers)
  .option("--n-heads <n>", "attention heads", intArg("--n-heads", 1), d.nHeads)
  .option("--block <n>", "context length", intArg("--block", 1), d.block)
  .option("--batch <n>", "sequences per micro-batch", intArg("--batch", 1), d.batch)
  .option("--accum <n>", "gradient accumulation steps", intArg("--accum", 1), d.accum)
  .option("--steps <n>", "optimizer steps", intArg("--steps", 0), d.steps)
  .option("--lr <x>", "peak learning rate", numArg("--lr", 0), d.lr)
  .option("--min-lr <x>", "final learning rate (default lr/10)", numArg("--min-lr", 0))
  .option("--warmup <n>", "linear warmup steps", intArg("--warmup", 0), d.warmup)
  .option("--dropout <p>", "dropout probability", numArg("--dropout", 0, 0.99), d.dropout)
  .option("--eval-interval <n>", "estimate losses every n steps", intArg("--eval-interval", 1), d.evalInterval)
  .option("--eval-iters <n>", "batches per loss estimate", intArg("--eval-iters", 1), d.evalIters)
  .option("--ckpt-interval <n>", "checkpoint every n steps (0 = at the end)", intArg("--ckpt-interval", 0), d.ckptInterval)
  .option("--seed <n>", "random seed", intArg("--seed", 0), d.seed)
  .option("--sample-tokens <n>", "characters to sample at the end", intArg("--sample-tokens", 0), d.sampleTokens)
  .option("--resume <dir>", "continue exactly from a checkpoint directory")
  .action(async (o: TrainCliOptions) => {
    const { summary, sample } = await runTrain(o);
    console.log(JSON.stringify(summary));
    console.log(sample);
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
