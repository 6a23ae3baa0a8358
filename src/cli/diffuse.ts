// `tsformer diffuse train | sample`: any image method of the registry (generative/registry.ts) trained on
// MNIST by the shared driver (generative/train-images.ts: AdamW, checkpoints, exact --resume), and a PNG
// grid of samples from a run. Progress: a cli-progress bar on a terminal, a plain line otherwise.

import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import cliProgress from "cli-progress";
import { InvalidArgumentError, type Command } from "commander";
import { IMAGE_METHODS, IMAGE_TRAIN_DEFAULTS, imageMethod, loadImageRun, trainImages, writeSampleGrid, type ImageTrainProgress, type ImageTrainResult } from "../index.js";
import { intArg, numArg, positiveArg } from "./args.js";

export interface DiffuseTrainCliOptions {
  method?: string; config?: string; steps?: number; batch?: number; lr?: number; warmup?: number; decaySteps?: number;
  weightDecay?: number; clip?: number; seed?: number; limit?: number; out?: string; resume?: boolean; saveEvery?: number;
}

export interface DiffuseSampleCliOptions {
  run: string; n: number; steps?: number; sampler?: string; eta?: number; spacing?: "uniform" | "quad"; guidance?: number; labels?: Int32Array;
  temperature?: number; seed: number; cols?: number; out?: string;
}

function methodArg(v: string): string {
  try { return imageMethod(v).name; } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

/** --labels 0,1,2: class labels, cycled to fill --n. */
export function labelsArg(v: string): Int32Array {
  const parts = v.split(",").map((s) => s.trim());
  if (!parts.every((s) => /^\d+$/.test(s))) throw new InvalidArgumentError(`--labels expects comma-separated class labels (integers >= 0) such as 0,1,2, got '${v}'`);
  return Int32Array.from(parts, Number);
}

function spacingArg(v: string): "uniform" | "quad" {
  if (v !== "uniform" && v !== "quad") throw new InvalidArgumentError(`--spacing expects uniform or quad, got '${v}'`);
  return v;
}

/** --config: a JSON object given inline, or the path of a file holding one. */
function readConfig(v: string): Record<string, unknown> {
  const inline = /^\s*[[{]/.test(v);
  if (!inline && !existsSync(v)) throw new Error(`--config ${v} is neither a JSON object nor an existing file`);
  if (!inline && !statSync(v).isFile()) throw new Error(`--config ${v} is not a file`);
  let c: unknown;
  try { c = JSON.parse(inline ? v : readFileSync(v, "utf8")); } catch (e) { throw new Error(`--config ${inline ? "" : `${v} `}is not valid JSON (${(e as Error).message})`); }
  if (typeof c !== "object" || c === null || Array.isArray(c)) throw new Error(`--config must hold a JSON object of the method's settings, got ${JSON.stringify(c)}`);
  return c as Record<string, unknown>;
}

function progressBar(stream: NodeJS.WriteStream = process.stderr) {
  let bar: cliProgress.SingleBar | null = null;
  return {
    update(p: ImageTrainProgress) {
      const label = `diffuse ${p.method}`, fields = { loss: p.loss.toFixed(4), ips: p.imagesPerSec.toFixed(1) };
      if (stream.isTTY) {
        bar ??= new cliProgress.SingleBar({ stream, hideCursor: true, etaBuffer: 20, format: `${label} |{bar}| {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}` }, cliProgress.Presets.shades_classic);
        if (!bar.isActive) bar.start(p.total, p.startStep, fields);
        bar.update(p.step, fields);
        return;
      }
      // about 20 lines a run, and the last step
      if (p.step % Math.max(1, Math.round((p.total - p.startStep) / 20)) !== 0 && p.step !== p.total) return;
      const eta = (p.seconds / (p.step - p.startStep)) * (p.total - p.step);
      stream.write(`${label} step ${p.step}/${p.total} | loss ${fields.loss} | ${fields.ips} img/s | ETA ${Math.round(eta)}s\n`);
    },
    stop() { bar?.stop(); },
  };
}

export async function runDiffuseTrain(o: DiffuseTrainCliOptions): Promise<ImageTrainResult> {
  const { config, out, resume, ...rest } = o;
  if (!resume && !o.method) throw new Error(`--method is required for a new run (one of: ${IMAGE_METHODS.join(", ")})`);
  const dir = out ?? (resume ? undefined : `runs/diffuse-${o.method}`);
  if (!dir) throw new Error("--resume needs --out, the run directory to continue");
  const bar = progressBar();
  // Ctrl-C: finish the step, save, stop; a second Ctrl-C exits at once.
  let stop = false;
  const onSigint = () => { if (stop) process.exit(130); stop = true; };
  process.on("SIGINT", onSigint);
  try {
    return await trainImages({ ...rest, out: dir, resume, config: config === undefined ? undefined : readConfig(config), onStep: (p) => bar.update(p), shouldStop: () => stop });
  } finally {
    bar.stop();
    process.off("SIGINT", onSigint);
  }
}

export async function runDiffuseSample(o: DiffuseSampleCliOptions): Promise<{ file: string; method: string; n: number }> {
  const { method, model, checkpoint } = await loadImageRun(o.run);
  const { run: _, out, labels, cols, ...opts } = o;
  // beside the checkpoint, not in it (a save replaces the checkpoint directory whole)
  const file = out ?? path.join(path.dirname(checkpoint), "samples.png");
  // a label per image, the list repeated; its length is then the grid's width, a class per column
  const full = labels && Int32Array.from({ length: o.n }, (_, i) => labels[i % labels.length]);
  writeSampleGrid(model, file, { ...opts, labels: full, cols: cols ?? (labels && labels.length <= 16 ? labels.length : 8) });
  return { file, method, n: o.n };
}

export function addDiffuseCommand(program: Command): void {
  const d = IMAGE_TRAIN_DEFAULTS;
  const methods = `\nMethods (--method):\n${IMAGE_METHODS.map((m) => `  ${m.padEnd(9)} ${imageMethod(m).description}`).join("\n")}`;
  const diffuse = program.command("diffuse").description("image generative models on MNIST (diffusion, flows, ...): train one, sample a PNG grid from it");
  diffuse.command("train")
    .description("train an image method on MNIST; the run directory holds checkpoint/ (exact --resume) and metrics.jsonl")
    .option("--method <name>", IMAGE_METHODS.join(" | "), methodArg)
    .option("--config <json|file>", "the method's config: a JSON object or a file holding one; missing fields from the method's defaults")
    .option("--steps <n>", "total optimizer steps of the run (default 2000; --resume: the run's, or raise it)", intArg("--steps", 1))
    .option("--batch <n>", `images per step (default: the method's, else ${d.batch})`, intArg("--batch", 1))
    .option("--lr <x>", `peak AdamW learning rate (default: the method's, else ${d.lr})`, positiveArg("--lr"))
    .option("--warmup <n>", `linear warmup steps (default: the method's, else ${d.warmup})`, intArg("--warmup", 0))
    .option("--decay-steps <n>", "cosine decay to lr/10 ending at this step (default: none, a constant rate)", intArg("--decay-steps", 1))
    .option("--weight-decay <x>", `AdamW weight decay (default ${d.weightDecay})`, numArg("--weight-decay", 0))
    .option("--clip <x>", `gradient-norm clip, 0 = off (default ${d.clip})`, numArg("--clip", 0))
    .option("--seed <n>", `seed of the init, the batch order and the noise (default ${d.seed})`, intArg("--seed", 0))
    .option("--limit <n>", "train on the first n MNIST training images (default all 60000)", intArg("--limit", 1))
    .option("--out <dir>", "run directory (default runs/diffuse-<method>)")
    .option("--resume", "continue the run in --out exactly, with its settings (only --steps may change)")
    .option("--save-every <n>", "checkpoint every n steps, 0 = at the end (and on Ctrl-C) only (default 0)", intArg("--save-every", 0))
    .option("--json", "print the summary as one JSON object")
    .addHelpText("after", methods)
    .action(async (o: DiffuseTrainCliOptions & { json?: boolean }) => {
      const { json, ...opts } = o;
      const r = await runDiffuseTrain(opts);
      const { losses, ...summary } = r;
      const last = losses.length ? losses[losses.length - 1] : null;
      if (json) { console.log(JSON.stringify({ ...summary, loss: last })); return; }
      console.log(`${r.method}: ${r.parameters} parameters; steps ${r.startStep} -> ${r.step}${r.stopped ? " (stopped; --resume continues)" : ""} in ${r.seconds.toFixed(1)} s; last loss ${last === null ? "-" : last.toFixed(4)}; checkpoint ${r.checkpoint}`);
    });
  diffuse.command("sample")
    .description("draw samples from a trained run and write them as a PNG grid")
    .requiredOption("--run <dir>", "a run directory of `diffuse train` (or its checkpoint/)")
    .option("--n <n>", "images to draw (default 64)", intArg("--n", 1), 64)
    .option("--steps <n>", "sampling steps (default: the method's)", intArg("--steps", 1))
    .option("--sampler <name>", "a sampler of the method, e.g. ddpm | ddim | euler | heun (default: the method's)")
    .option("--eta <x>", "DDIM's eta (0 = deterministic)", numArg("--eta", 0))
    .option("--spacing <kind>", "DDIM's step subsequence: uniform | quad (default uniform)", spacingArg)
    .option("--guidance <x>", "classifier-free guidance scale, 1 = none (conditional methods)", numArg("--guidance", 0))
    .option("--labels <list>", "class labels, comma-separated, repeated to fill --n; a class per grid column (conditional methods)", labelsArg)
    .option("--temperature <x>", "latent temperature (flows; default 1)", numArg("--temperature", 0))
    .option("--seed <n>", "sampling seed (default 0)", intArg("--seed", 0), 0)
    .option("--cols <n>", "grid columns (default: the number of --labels, else 8)", intArg("--cols", 1))
    .option("--out <file.png>", "the PNG to write (default <run>/samples.png)")
    .addHelpText("after", methods)
    .action(async (o: DiffuseSampleCliOptions) => {
      const r = await runDiffuseSample(o);
      console.log(`${r.method}: ${r.n} samples -> ${r.file}`);
    });
}
