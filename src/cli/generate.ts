// `tsformer generate` and `tsformer eval`: inference on a tsformer checkpoint, an HF directory or a
// llama2.c .bin. Sampling flags not given come from the model's generation_config.json, else the
// defaults below.

import {
  checkSameTokenizer, eosIdsOf, generate, linePlotSvg, loadForInference, loadMedusaHeads, loadMTPModules, maxNewTokensFor, medusaGenerate, mtpGenerate, ROPE_SCALINGS, scoreTokens,
  speculativeGenerate, TransformerLM, writeFileAtomic, writeSvg, type CausalLM, type GenerateResult, type MedusaStats, type MTPModules, type MTPStats, type PositionOptions,
  type SpeculativeStats, type Tokenizer,
} from "../index.js";
import { readTextInput } from "./text-input.js";

/** --rope-scaling, --rope-factor, --rerope-window, --rerope-leak, --logn, --context (generate and eval). */
export interface PositionCliOptions {
  ropeScaling?: string; ropeFactor?: number; reropeWindow?: number; reropeLeak?: number; logn?: boolean; context?: number;
}

export interface GenerateCliOptions extends PositionCliOptions {
  model: string; tokenizer?: string; adapter?: string; prompt: string; maxNewTokens?: number; temperature?: number;
  topK?: number; topP?: number; repetitionPenalty?: number; seed: number; stop: string[]; draft?: string; gamma?: number;
  /** --medusa DIR: Medusa heads (a finetune --method medusa checkpoint) propose a token tree per pass. */
  medusa?: string;
  /** --mtp [DIR]: the MTP modules of a train --mtp checkpoint (DIR, or --model's own: true) draft tokens per pass. */
  mtp?: string | true;
  /** --weights fp32 | bf16 | int8: the Linear weights' inference format (models/quantize.ts). */
  weights?: string;
}

/** The position flags as PositionOptions (only what was given), or one error naming the flag. */
export function positionOptions(o: PositionCliOptions): PositionOptions {
  const p: PositionOptions = {};
  if (o.ropeScaling !== undefined) {
    if (o.ropeScaling === "none") p.ropeScaling = null;
    else if (!Object.hasOwn(ROPE_SCALINGS, o.ropeScaling)) throw new Error(`--rope-scaling ${o.ropeScaling}: unknown scheme; expected none or one of ${Object.keys(ROPE_SCALINGS).join(", ")}`);
    else if (o.ropeFactor === undefined) throw new Error(`--rope-scaling ${o.ropeScaling} needs --rope-factor (the context extension factor, > 0)`);
    else p.ropeScaling = { type: o.ropeScaling, factor: o.ropeFactor };
  } else if (o.ropeFactor !== undefined) throw new Error("--rope-factor needs --rope-scaling TYPE");
  if (o.reropeWindow !== undefined) p.rerope = { window: o.reropeWindow, leak: o.reropeLeak ?? 0 };
  else if (o.reropeLeak !== undefined) throw new Error("--rerope-leak needs --rerope-window W");
  if (o.logn) p.logn = true;
  return p;
}

export const SAMPLING_DEFAULTS = { maxNewTokens: 200, temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1 };

export const SPECULATIVE_GAMMA = 4;

/** --draft: a model with the target's vocabulary and tokenizer (its own, when it has one), or one error naming the difference. */
async function loadDraft(path: string, target: CausalLM, tokenizer: Tokenizer, positions: PositionOptions, log: (s: string) => void): Promise<CausalLM> {
  const d = await loadForInference(path, undefined, undefined, positions);
  const [vd, vt] = [d.model.config.vocabSize, target.config.vocabSize];
  if (vd !== vt) throw new Error(`--draft ${path} has vocabSize ${vd} but --model has ${vt}; the draft must share the target's vocabulary`);
  if (!d.tokenizer) log(`--draft ${path} has no tokenizer of its own: only its vocabulary size was checked against --model's\n`);
  else try { checkSameTokenizer(tokenizer, d.tokenizer); } catch (e) { throw new Error(`--draft ${path}: ${(e as Error).message}`); }
  return d.model;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const formatSpeculativeStats = (s: SpeculativeStats): string =>
  `speculative decoding: gamma ${s.gamma}, alpha ${f2(s.alpha)} (${s.accepted} of ${s.verified} verified draft tokens accepted), ` +
  `${f2(s.tokensPerTargetCall)} tokens per target call (predicted from alpha: ${f2(s.predictedTokensPerTargetCall)}), ${s.targetCalls} target / ${s.draftCalls} draft calls`;
const formatMedusaStats = (s: MedusaStats): string =>
  `medusa: ${f2(s.tokensPerRound)} tokens per tree round (${s.accepted} head candidates kept in ${s.rounds} rounds, tree of ${s.treeSize}), ${s.calls} model calls`;
const formatMTPStats = (s: MTPStats): string =>
  `mtp: acceptance per depth ${s.acceptRate.map(f2).join(" / ")} (${s.accepted.join(" / ")} of ${s.verified.join(" / ")} verified drafts kept), ` +
  `${f2(s.tokensPerRound)} tokens per verify round (${s.rounds} rounds), ${s.calls} model calls`;

/** --mtp [DIR]: the modules of DIR (or of --model's checkpoint), for --model; one error if they are not there or not for it. */
async function loadMTP(o: GenerateCliOptions, model: CausalLM): Promise<{ base: TransformerLM; mtp: MTPModules }> {
  const dir = o.mtp === true ? o.model : o.mtp!, who = `--mtp ${dir}`;
  if (!(model instanceof TransformerLM)) throw new Error(`${who}: MTP modules decode on a TransformerLM; --model gives a ${model.constructor.name}`);
  const { mtp } = await loadMTPModules(dir, "--mtp");
  mtp.checkBase(model, who);
  return { base: model, mtp };
}

export async function runGenerate(o: GenerateCliOptions, write = (s: string) => process.stdout.write(s), log = (s: string) => process.stderr.write(s)): Promise<GenerateResult> {
  if (o.gamma !== undefined && !o.draft) throw new Error("--gamma needs --draft MODEL (speculative decoding's draft model)");
  if (o.medusa && o.draft) throw new Error("--medusa and --draft are two ways to propose tokens: give one");
  if (o.mtp && (o.draft || o.medusa)) throw new Error(`--mtp and ${o.draft ? "--draft" : "--medusa"} are two ways to propose tokens: give one`);
  const { model, tokenizer, generation } = await loadForInference(o.model, o.tokenizer, o.adapter, positionOptions(o), o.weights);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer (a llama2.c tokenizer .bin or a tokenizer.json)`);
  const g = { ...SAMPLING_DEFAULTS, ...Object.fromEntries(Object.entries(generation ?? {}).filter(([, v]) => v !== undefined)) };
  const eos = eosIdsOf(generation, tokenizer);
  const prompt = tokenizer.encode(o.prompt, tokenizer.bosId !== undefined ? { bos: true } : {});
  if (prompt.length === 0) throw new Error("--prompt is empty and the tokenizer has no BOS token to start from");
  // Checked before the prompt is echoed: a refused prompt prints nothing on stdout.
  const ctx = o.context ?? model.config.maxSeqLen;
  if (prompt.length > ctx) throw new Error(`--prompt has ${prompt.length} tokens, longer than the context of ${ctx}${o.context ? "" : " (--context N reads further when the position scheme extrapolates)"}`);
  const draft = o.draft ? await loadDraft(o.draft, model, tokenizer, positionOptions(o), log) : null;
  const heads = o.medusa ? await loadMedusaHeads(o.medusa, { dModel: (model.config as { dModel?: number }).dModel ?? -1, vocabSize: model.config.vocabSize }) : null;
  const mtp = o.mtp ? await loadMTP(o, model) : null;
  write(o.prompt);
  const opts = {
    maxNewTokens: o.maxNewTokens ?? maxNewTokensFor(generation, prompt.length) ?? SAMPLING_DEFAULTS.maxNewTokens, temperature: o.temperature ?? g.temperature, topK: o.topK ?? g.topK,
    topP: o.topP ?? g.topP, repetitionPenalty: o.repetitionPenalty ?? g.repetitionPenalty, seed: o.seed, stop: o.stop,
    tokenizer, eosId: eos, onText: write, context: ctx,
  };
  const spec = draft ? speculativeGenerate(model, draft, prompt, { ...opts, gamma: o.gamma ?? SPECULATIVE_GAMMA }) : null;
  const med = heads ? medusaGenerate(model, prompt, { ...opts, heads }) : null;
  const mt = mtp ? mtpGenerate(mtp.base, prompt, { ...opts, mtp: mtp.mtp }) : null;
  const r = spec ?? med ?? mt ?? generate(model, prompt, opts);
  write("\n");
  if (spec) log(`${formatSpeculativeStats(spec.stats)}\n`);
  if (med) log(`${formatMedusaStats(med.stats)}\n`);
  if (mt) log(`${formatMTPStats(mt.stats)}\n`);
  return r;
}

export interface EvalCliOptions extends PositionCliOptions {
  model: string; tokenizer?: string; adapter?: string; text: string; logprobs?: string; byPosition?: string; weights?: string;
}

export interface EvalSummary {
  tokens: number; loss: number; perplexity: number; context: number;
  /** Mean loss per position bucket of the window (--by-position). */
  byPosition?: { from: number; to: number; loss: number; tokens: number }[];
}

const BUCKETS = 16;

export async function runEval(o: EvalCliOptions): Promise<EvalSummary> {
  const { text } = readTextInput(o.text, "--text");
  const { model, tokenizer } = await loadForInference(o.model, o.tokenizer, o.adapter, positionOptions(o), o.weights);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer`);
  const ids = tokenizer.encode(text, tokenizer.bosId !== undefined ? { bos: true } : {});
  const context = o.context ?? model.config.maxSeqLen;
  const r = scoreTokens(model, ids, { logprobs: Boolean(o.logprobs), window: context, byPosition: Boolean(o.byPosition) });
  if (o.logprobs) writeFileAtomic(o.logprobs, JSON.stringify(r.logprobs));
  const out: EvalSummary = { tokens: r.tokens, loss: r.loss, perplexity: r.perplexity, context };
  if (r.byPosition && o.byPosition) {
    const { nll, count } = r.byPosition, width = Math.ceil(context / BUCKETS);
    out.byPosition = [];
    for (let from = 0; from < context; from += width) {
      let s = 0, n = 0;
      for (let t = from; t < Math.min(from + width, context); t++) { s += nll[t]; n += count[t]; }
      if (n) out.byPosition.push({ from, to: Math.min(from + width, context) - 1, loss: s / n, tokens: n });
    }
    const pts = out.byPosition.map((b) => [(b.from + b.to) / 2, b.loss] as const);
    await writeSvg(o.byPosition, linePlotSvg([{ name: "loss", points: pts }], { title: `loss by position (context ${context})`, xLabel: "position in the window", yLabel: "loss (nats)" }));
  }
  return out;
}
