// `tsformer memory`: the training-memory planner (train/memory-plan.ts) for a model config (tsformer
// config.json, an HF config.json, either kind of model directory), a named preset, or a bare parameter
// count. Prints one row per memory kind with its bytes per device and formula, or one JSON object.

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import {
  CHECKPOINTINGS, MEMORY_PRESETS, OPTIMIZERS, PRECISIONS, ZERO_STAGES, defaultPrecision, memoryPreset, planConfig, planMemory, readJsonFile,
  type Checkpointing, type MemoryPlan, type ModelConfig, type OptimizerName, type PlanModel, type Precision, type ZeroStage,
} from "../index.js";
import { intArg } from "./args.js";

export interface MemoryCliOptions {
  model?: string; preset?: string; params?: number;
  precision?: Precision; optimizer?: OptimizerName; zero?: ZeroStage; devices?: number;
  batch?: number; seq?: number; checkpointing?: Checkpointing; loraR?: number; json?: boolean;
}

export const MEMORY_DEFAULTS = { optimizer: "adamw", zero: 0, devices: 1, batch: 1, checkpointing: "none" } as const;

function choice<T extends string | number>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    const hit = values.find((x) => String(x) === v);
    if (hit === undefined) throw new InvalidArgumentError(`${flag} expects one of ${values.join(", ")}, got '${v}'`);
    return hit;
  };
}

function paramsArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--params expects a parameter count such as 7e9, got '${v}'`);
  return n;
}

/** The config.json of --model: the file itself, or the one in a model directory. */
function modelConfig(path: string): ReturnType<typeof planConfig> {
  if (!existsSync(path)) throw new Error(`--model ${path} does not exist`);
  const file = statSync(path).isDirectory() ? join(path, "config.json") : path;
  if (!existsSync(file)) throw new Error(`--model ${path} is a directory without config.json; expected a tsformer or HF model directory, or a config.json`);
  let raw: unknown;
  try { raw = readJsonFile(file); } catch (e) { throw new Error(`--model: ${(e as Error).message}`); }
  return planConfig(raw, file);
}

function preset(name: string): ReturnType<typeof memoryPreset> {
  try { return memoryPreset(name); } catch (e) { throw new Error(`--preset: ${(e as Error).message}`); }
}

export function runMemory(o: MemoryCliOptions, write = (s: string) => console.log(s)): MemoryPlan {
  const given = (["model", "preset", "params"] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new Error(`give exactly one of --model, --preset or --params${given.length ? ` (got ${given.map((k) => `--${k}`).join(" and ")})` : ""}`);
  let source: string, model: PlanModel, precision: Precision = "fp32";
  if (o.params !== undefined) {
    source = "a bare parameter count";
    model = { parameters: o.params };
  } else {
    const m = o.model !== undefined ? modelConfig(o.model) : preset(o.preset!);
    source = o.model ?? `preset ${o.preset}`;
    model = { config: m.config };
    precision = defaultPrecision(m.dtype);
  }
  const seq = o.seq ?? ("config" in model ? model.config.maxSeqLen : 1);
  const plan = planMemory(model, { ...MEMORY_DEFAULTS, precision, ...defined(o), seq });
  write(o.json ? JSON.stringify({ source, ...plan }) : formatPlan(plan, source, "config" in model ? model.config : null));
  return plan;
}

/** The options the user gave (commander leaves the others undefined). */
function defined(o: MemoryCliOptions): Partial<MemoryCliOptions> {
  const { model: _m, preset: _p, params: _n, json: _j, ...rest } = o;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

/** Decimal units, as the ZeRO paper's GB: 31.40625e9 -> "31.4 GB". */
export function decimalBytes(n: number): string {
  const [div, unit] = ([[1e12, "TB"], [1e9, "GB"], [1e6, "MB"], [1e3, "kB"]] as const).find(([d]) => n >= d) ?? [1, "bytes"];
  return `${Number((n / div).toPrecision(3))} ${unit}`;
}

export function formatPlan(p: MemoryPlan, source: string, c: ModelConfig | null): string {
  const o = p.options;
  const mixed = o.precision === "fp32" ? "fp32" : `${o.precision} mixed precision`;
  const lines = [
    `${source}: ${p.parameters.toLocaleString("en-US")} parameters${p.trainable !== p.parameters ? `, ${p.trainable.toLocaleString("en-US")} trainable (LoRA r = ${o.loraR})` : ""}`,
    `${mixed}, ${o.optimizer}, ZeRO stage ${o.zero} on ${o.devices} device${o.devices > 1 ? "s" : ""}` +
      (c ? `; ${o.batch} x ${o.seq} tokens per device, checkpointing ${o.checkpointing}, attention ${c.attention}` : ""),
    `${"".padEnd(16)}${"per device".padStart(11)}  formula`,
    ...p.rows.map((r) => `${r.row.padEnd(16)}${(r.bytes === null ? "-" : decimalBytes(r.bytes)).padStart(11)}  ${r.formula}`),
    `where ${Object.entries(p.where).map(([k, v]) => `${k} = ${v}`).join(", ")}; GB = 1e9 bytes`,
    ...p.notes.map((n) => `note: ${n}`),
  ];
  return lines.join("\n");
}

export function addMemoryCommand(program: Command): void {
  const d = MEMORY_DEFAULTS;
  program.command("memory")
    .description("training memory per device: parameters, gradients, optimizer state (ZeRO stages 0-3) and activations, each with its formula")
    .option("--model <path>", "a tsformer or HF config.json, or a tsformer / HF model directory")
    .option("--preset <name>", `a named model: ${Object.entries(MEMORY_PRESETS).map(([n, p]) => `${n} (${p.about})`).join(", ")}`)
    .option("--params <n>", "a bare parameter count such as 7e9: parameters, gradients and optimizer state only", paramsArg)
    .option("--precision <p>", `${PRECISIONS.join(" | ")}; bf16 and fp16 are mixed precision (16-bit weights and gradients, fp32 master weights) (default: bf16 / fp16 when an HF config's torch_dtype says so, else fp32)`, choice("--precision", PRECISIONS))
    .option("--optimizer <name>", `${OPTIMIZERS.join(" | ")} (sgd: with momentum) (default ${d.optimizer})`, choice("--optimizer", OPTIMIZERS))
    .option("--zero <stage>", `ZeRO stage: 0 none, 1 optimizer state, 2 + gradients, 3 + parameters split over --devices (default ${d.zero})`, choice("--zero", ZERO_STAGES))
    .option("--devices <n>", `data-parallel devices (default ${d.devices})`, intArg("--devices", 1))
    .option("--batch <n>", `sequences per device (default ${d.batch})`, intArg("--batch", 1))
    .option("--seq <n>", "tokens per sequence (default: the model's maxSeqLen)", intArg("--seq", 1))
    .option("--checkpointing <mode>", `${CHECKPOINTINGS.join(" | ")}: block keeps each block's input and recomputes the block in backward (default ${d.checkpointing})`, choice("--checkpointing", CHECKPOINTINGS))
    .option("--lora-r <r>", "LoRA of rank r on q, k, v, o with the base frozen (default: full fine-tuning)", intArg("--lora-r", 1))
    .option("--json", "print one JSON object")
    .action((o: MemoryCliOptions) => { runMemory(o); });
}
