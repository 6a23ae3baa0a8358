#!/usr/bin/env node
// The tsformer command line. Each command validates its flags and reports bad input in one line.

import { Command } from "commander";
import { MTP_DEFAULT_WEIGHT, PEFT_METHODS, ROPE_SCALINGS, setNativeThreads, version } from "../index.js";
import { printInfo } from "./info.js";
import { collect, intArg, numArg, positiveArg, precisionArg, PRECISION_HELP, lrScheduleArg, lrScheduleHelp } from "./args.js";
import { batchingArg, checkpointingArg, formatSummary, runTrain, TRAIN_DEFAULTS, type TrainCliOptions } from "./train.js";
import { presetHelp } from "./presets.js";
import { runEval, runGenerate, SAMPLING_DEFAULTS, SPECULATIVE_GAMMA, type EvalCliOptions, type GenerateCliOptions } from "./generate.js";
import { runChat, type ChatCliOptions } from "./chat.js";
import { runTokenizerTrain, type TokenizerTrainOptions } from "./tokenizer.js";
import { CONVERT_FORMATS, runConvert, runMerge, type ConvertCliOptions, type MergeCliOptions } from "./convert.js";
import { FINETUNE_DEFAULTS, runFinetune, type FinetuneCliOptions } from "./finetune.js";
import { runStart } from "./start.js";
import { runFlops, type FlopsCliOptions } from "./flops.js";
import { addMemoryCommand } from "./memory.js";
import { addDiffuseCommand } from "./diffuse.js";
import { runServe, SERVE_DEFAULTS, type ServeCliOptions } from "./serve.js";

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
const CHECKPOINTING_HELP = "gradient checkpointing: none, block (recompute each block in backward) or N (each run of N blocks)";
program.command("train")
  .description("train a TransformerLM on a text file (character-level, or a BPE tokenizer.json with --tokenizer)")
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
  .option("--lr-schedule <kind>", lrScheduleHelp("--min-lr"), lrScheduleArg)
  .option("--cooldown <n>", "--lr-schedule wsd: steps of the final linear decay (default a fifth of --steps)", intArg("--cooldown", 1))
  .option("--dropout <p>", `dropout probability (default ${d.dropout})`, numArg("--dropout", 0, 0.99))
  .option("--checkpointing <mode>", `${CHECKPOINTING_HELP} (default: the model config's, else none)`, checkpointingArg)
  .option("--precision <p>", `${PRECISION_HELP} (default fp32)`, precisionArg)
  .option("--batching <mode>", "train on the documents of --data (separated by <|endoftext|> lines, as TinyStories), --batch per batch: padded | packed | unpadded (default: random --block windows of the text)", batchingArg)
  .option("--pack-len <n>", "--batching packed: input positions per packed row (default --block); padded: a fixed row length", intArg("--pack-len", 1))
  .option("--eval-interval <n>", `estimate losses every n steps (default ${d.evalInterval})`, intArg("--eval-interval", 1))
  .option("--eval-iters <n>", `batches per loss estimate (default ${d.evalIters})`, intArg("--eval-iters", 1))
  .option("--ckpt-interval <n>", `checkpoint every n steps, 0 = at the end (default ${d.ckptInterval})`, intArg("--ckpt-interval", 0))
  .option("--save-total-limit <n>", "keep the newest n checkpoints, never deleting the best (default 0 = all)", intArg("--save-total-limit", 0))
  .option("--seed <n>", `random seed (default ${d.seed})`, intArg("--seed", 0))
  .option("--sample-tokens <n>", `characters to sample at the end (default ${d.sampleTokens})`, intArg("--sample-tokens", 0))
  .option("--tokenizer <file>", "an HF tokenizer.json to train with (e.g. from `tsformer tokenizer train`; default: characters of --data)")
  .option("--mtp <D>", "multi-token prediction (DeepSeek-V3): train D MTP modules with the model; checkpoints keep the plain model in model.safetensors and the modules in mtp.safetensors (decode with generate --mtp)", intArg("--mtp", 1))
  .option("--mtp-weight <lambda>", `--mtp: weight of the modules' mean loss added to the main loss (default ${MTP_DEFAULT_WEIGHT})`, numArg("--mtp-weight", 0))
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

const MODEL_HELP = "a tsformer checkpoint or model directory, an HF model directory, or a llama2.c .bin";
const ADAPTER_HELP = "an adapter directory on top of --model: a finetune checkpoint (RUN/best) or a PEFT LoRA adapter";
const TOKENIZER_HELP = "tokenizer file: tokenizer.json (HF or tsformer) or a llama2.c .bin (default: the model's own; tokenizer.bin or tok512.bin beside a .bin)";
const s = SAMPLING_DEFAULTS, fromGen = "default: generation_config.json's, else";

// --weights of generate, eval and serve: checked by loadForInference (one error naming the flag)
const WEIGHTS_HELP = "Linear weights for inference: fp32, bf16, or int8 (per-output-channel symmetric); the LM head and embeddings stay fp32 (default fp32)";

/** The position-scheme flags of generate and eval (context extension at inference, nn/position/). */
function positionFlags(c: Command): Command {
  return c
    .option("--rope-scaling <type>", `RoPE frequency scheme: ${Object.keys(ROPE_SCALINGS).join(", ")}, or none (replaces the model's)`)
    .option("--rope-factor <s>", "context extension factor of --rope-scaling", positiveArg("--rope-factor"))
    .option("--rerope-window <w>", "ReRoPE: relative positions past w are clipped to w (Su 2023)", intArg("--rerope-window", 1))
    .option("--rerope-leak <s>", "Leaky ReRoPE: past the window, positions advance by s per token (default 0 = ReRoPE)", numArg("--rerope-leak", 0))
    .option("--logn", "scale queries by max(1, log_L(n)) past the training length L")
    .option("--context <n>", "context window in tokens (default: the model's training length)", intArg("--context", 1));
}

/** The sampling flags of generate and chat; defaults come from the model's generation_config.json. */
function samplingOptions(c: Command, dflt: typeof SAMPLING_DEFAULTS): Command {
  return c
    .option("--max-new-tokens <n>", `tokens to generate (${fromGen} ${dflt.maxNewTokens})`, intArg("--max-new-tokens", 1))
    .option("--temperature <x>", `0 = greedy (${fromGen} ${dflt.temperature})`, numArg("--temperature", 0))
    .option("--top-k <n>", `keep the k most likely tokens, 0 = off (${fromGen} ${dflt.topK})`, intArg("--top-k", 0))
    .option("--top-p <x>", `nucleus sampling threshold (${fromGen} ${dflt.topP})`, numArg("--top-p", 0, 1))
    .option("--repetition-penalty <x>", `CTRL repetition penalty, 1 = off (${fromGen} ${dflt.repetitionPenalty})`, numArg("--repetition-penalty", 0))
    .option("--seed <n>", "sampling seed", intArg("--seed", 0), 0);
}

positionFlags(samplingOptions(program.command("generate")
  .description("generate text from a model")
  .requiredOption("--model <path>", MODEL_HELP)
  .option("--adapter <dir>", ADAPTER_HELP)
  .option("--tokenizer <file>", TOKENIZER_HELP)
  .option("--prompt <text>", "prompt", ""), s)
  .option("--stop <text>", "stop string (repeatable)", collect, [])
  .option("--draft <model>", "speculative decoding: a smaller model with the same tokenizer drafts tokens that --model verifies (the output is distributed as --model's)")
  .option("--gamma <n>", `speculative decoding: draft tokens per --model pass (default ${SPECULATIVE_GAMMA})`, intArg("--gamma", 1))
  .option("--medusa <dir>", "Medusa decoding: the heads of a finetune --method medusa checkpoint propose a token tree that --model verifies in one pass (greedy output is --model's)")
  .option("--mtp [dir]", "MTP self-speculative decoding: the MTP modules of a train --mtp checkpoint (DIR, default --model itself) draft tokens that --model verifies in one pass (greedy output is --model's)")
  .option("--weights <format>", WEIGHTS_HELP))
  .action(async (o: GenerateCliOptions) => { await runGenerate(o); });

positionFlags(program.command("eval")
  .description("loss and perplexity of a model on a text file")
  .requiredOption("--model <path>", MODEL_HELP)
  .option("--adapter <dir>", ADAPTER_HELP)
  .requiredOption("--text <file>", "text to score")
  .option("--tokenizer <file>", TOKENIZER_HELP)
  .option("--logprobs <file>", "write per-token log-probabilities as JSON")
  .option("--by-position <file.svg>", "add the loss per position bucket of the window to the output and plot it to this file")
  .option("--weights <format>", WEIGHTS_HELP))
  .action(async (o: EvalCliOptions) => { console.log(JSON.stringify(await runEval(o))); });

samplingOptions(program.command("chat")
  .description("chat with a model that has a chat template (an HF directory with tokenizer_config.json); streams replies, keeps the history")
  .requiredOption("--model <path>", MODEL_HELP)
  .option("--adapter <dir>", ADAPTER_HELP)
  .option("--tokenizer <file>", TOKENIZER_HELP)
  .option("--system <text>", "system message"), { ...s, temperature: 0.7, maxNewTokens: 256 })
  .action(async (o: ChatCliOptions) => { await runChat(o); });

program.command("convert")
  .description("write a model in another format: hf (an HF directory transformers can load), tsformer, llama2c")
  .requiredOption("--from <path>", MODEL_HELP)
  .requiredOption("--to <format>", `${CONVERT_FORMATS.join(" | ")}`)
  .argument("<out>", "output directory")
  .option("--tokenizer <file>", TOKENIZER_HELP)
  .option("--dtype <type>", "hf: weight dtype float32 | bfloat16 | float16 (default: the source's torch_dtype, else float32)")
  .option("--max-shard-size <bytes>", "hf: split the weights into shards of at most this many bytes (default 5e9)", intArg("--max-shard-size", 1))
  .option("--overwrite", "replace a non-empty output directory")
  .action(async (out: string, o: Omit<ConvertCliOptions, "out">) => {
    if (o.dtype !== undefined && !["float32", "bfloat16", "float16"].includes(o.dtype)) throw new Error(`--dtype ${JSON.stringify(o.dtype)}: expected float32, bfloat16 or float16`);
    console.log(await runConvert({ ...o, out }));
  });

const f = FINETUNE_DEFAULTS;
program.command("finetune")
  .description("fine-tune a model with its base frozen: LoRA, DoRA, Houlsby adapters, prefix or prompt tuning, Medusa heads (or full fine-tuning); checkpoints hold the adapter")
  .option("--model <path>", `the base: ${MODEL_HELP}`)
  .option("--data <file>", "text to fine-tune on, UTF-8 (90% train / 10% validation)")
  .option("--method <m>", `${PEFT_METHODS.join(" | ")} (default ${f.method})`)
  .option("--r <n>", `LoRA rank (default ${f.r})`, intArg("--r", 1))
  .option("--alpha <x>", `LoRA alpha; scaling alpha/r (default ${f.alpha})`, numArg("--alpha", 0))
  .option("--dropout <p>", "LoRA dropout (default 0)", numArg("--dropout", 0, 0.99))
  .option("--target <names>", "LoRA target modules, comma-separated (default q_proj,v_proj / wq,wv)")
  .option("--rslora", "scale by alpha/sqrt(r) (rsLoRA)")
  .option("--bias <mode>", "LoRA biases that train: none | all | lora_only (default none)")
  .option("--modules-to-save <names>", "modules trained in full and saved with the adapter, comma-separated")
  .option("--bottleneck <n>", "Houlsby adapter size (default 16)", intArg("--bottleneck", 1))
  .option("--virtual-tokens <n>", "prefix / prompt tuning: virtual tokens (default 16)", intArg("--virtual-tokens", 1))
  .option("--prefix-hidden <n>", "prefix tuning: the reparameterization MLP's width, 0 = none (default: the key/value width)", intArg("--prefix-hidden", 0))
  .option("--heads <n>", "medusa: decoding heads K (default 4)", intArg("--heads", 1))
  .option("--checkpointing <mode>", `${CHECKPOINTING_HELP} (default none)`, checkpointingArg)
  .option("--precision <p>", `${PRECISION_HELP} (default fp32)`, precisionArg)
  .option("--steps <n>", `optimizer steps (default ${f.steps})`, intArg("--steps", 0))
  .option("--lr <x>", `peak learning rate (default ${f.lr})`, numArg("--lr", 0))
  .option("--batch <n>", `sequences per step (default ${f.batch})`, intArg("--batch", 1))
  .option("--block <n>", "context length (default min(128, the model's))", intArg("--block", 1))
  .option("--warmup <n>", `warmup steps (default ${f.warmup})`, intArg("--warmup", 0))
  .option("--lr-schedule <kind>", lrScheduleHelp("lr/10"), lrScheduleArg)
  .option("--cooldown <n>", "--lr-schedule wsd: steps of the final linear decay (default a fifth of --steps)", intArg("--cooldown", 1))
  .option("--eval-interval <n>", `estimate losses every n steps (default ${f.evalInterval})`, intArg("--eval-interval", 1))
  .option("--eval-iters <n>", `batches per estimate (default ${f.evalIters})`, intArg("--eval-iters", 1))
  .option("--ckpt-interval <n>", "checkpoint every n steps, 0 = at the end (default 0)", intArg("--ckpt-interval", 0))
  .option("--seed <n>", `random seed (default ${f.seed})`, intArg("--seed", 0))
  .option("--sample-tokens <n>", `tokens to sample at the end (default ${f.sampleTokens})`, intArg("--sample-tokens", 0))
  .option("--out <dir>", `run directory (default ${f.out})`)
  .option("--overwrite", "replace the run already in --out")
  .option("--resume <dir>", "continue a fine-tune exactly (base, method, data from its checkpoint)")
  .option("--json", "print the summary as one JSON object")
  .action(async (o: FinetuneCliOptions & { json?: boolean }) => {
    const { json, ...opts } = o;
    const { summary, sample, runDir } = await runFinetune(opts);
    if (json) { console.log(JSON.stringify(summary)); return; }
    console.log(`\n${formatSummary(summary, runDir)}\n\n-- sample (temperature 0.8, top-k 40) --\n${sample}`);
  });

program.command("merge")
  .description("fold a LoRA adapter into its base and write the merged model (in the base's format, or --to)")
  .requiredOption("--model <path>", `the base: ${MODEL_HELP}`)
  .requiredOption("--adapter <dir>", ADAPTER_HELP)
  .requiredOption("--out <dir>", "output directory")
  .option("--to <format>", `${CONVERT_FORMATS.join(" | ")} (default: the base's format)`)
  .option("--overwrite", "replace a non-empty --out")
  .action(async (o: MergeCliOptions) => { console.log(await runMerge(o)); });

const tokenizer = program.command("tokenizer").description("tokenizer tools");
tokenizer.command("train")
  .description("learn a byte-level BPE vocabulary on a text file; writes an HF tokenizer directory (tokenizer.json, tokenizer_config.json)")
  .requiredOption("--data <file>", "training text, UTF-8")
  .requiredOption("--vocab-size <n>", "vocabulary size, special tokens and the 256 byte symbols included", intArg("--vocab-size", 1))
  .requiredOption("--out <dir>", "output directory")
  .option("--special <token>", "special token, never split or merged (repeatable; default <|endoftext|>)", collect, [])
  .option("--min-frequency <n>", "merge only pairs seen at least n times", intArg("--min-frequency", 0))
  .option("--overwrite", "replace a non-empty --out")
  .option("--json", "print the summary as one JSON object")
  .action((o: TokenizerTrainOptions & { json?: boolean }) => {
    const { json, ...opts } = o;
    const r = runTokenizerTrain(opts);
    if (json) { console.log(JSON.stringify(r)); return; }
    console.log(`vocab ${r.vocabSize} (${r.merges} merges) in ${r.seconds.toFixed(1)} s; ${r.bytes} bytes -> ${r.tokens} tokens (${r.bytesPerToken.toFixed(2)} bytes/token); wrote ${r.out}`);
  });

program.command("start")
  .description("the main job on embedded defaults (what `npm start` runs)")
  .action(runStart);

program.command("flops")
  .description("forward FLOPs per layer (attention scores, projections, FFN) and the length T* from which attention dominates")
  .requiredOption("--config <file>", "model config JSON")
  .option("--seq <n>", "sequence length (default: the config's maxSeqLen)", intArg("--seq", 1))
  .option("--json", "print one JSON object")
  .action((o: FlopsCliOptions) => { runFlops(o); });

addMemoryCommand(program);
addDiffuseCommand(program);

const sv = SERVE_DEFAULTS;
program.command("serve")
  .description("an OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models, /health, /tokenize, /detokenize) with continuous batching")
  .requiredOption("--model <path>", MODEL_HELP)
  .option("--adapter <dir>", ADAPTER_HELP)
  .option("--tokenizer <file>", TOKENIZER_HELP)
  .option("--chat-template <file>", "a Jinja chat template (or a tokenizer_config.json holding one) for models without their own")
  .option("--host <addr>", "address to listen on", sv.host)
  .option("--port <n>", "port (0: any free port)", intArg("--port", 0), sv.port)
  .option("--api-key <key>", "require Authorization: Bearer <key>")
  .option("--parallel <n>", "most sequences decoded together (a request with n choices takes n)", intArg("--parallel", 1), sv.parallel)
  .option("--max-queue <n>", "requests waiting beyond --parallel before 429", intArg("--max-queue", 0), sv.maxQueue)
  .option("--max-body <bytes>", "largest request body (413 past it)", intArg("--max-body", 1), sv.maxBody)
  .option("--model-name <name>", "the model id clients send (default: the --model path's last part)")
  .option("--weights <format>", WEIGHTS_HELP)
  .action(async (o: ServeCliOptions) => { await runServe(o); });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`tsformer: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
