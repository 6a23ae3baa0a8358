// `tsformer convert --from <model> --to hf|tsformer|llama2c <out>`: any model tsformer loads (a tsformer
// model or checkpoint directory, an HF directory, a llama2.c .bin) written in another format. The
// tokenizer goes along: HF tokenizer files are copied, a llama2.c tokenizer becomes an HF
// tokenizer.json (Llama's SentencePiece-BPE layout) or stays a .bin.

import * as path from "node:path";
import {
  CharTokenizer, HFTokenizer, loadPeft, mergeAndUnload, Llama2cTokenizer, llama2cFromTokenizerJson, llama2cTokenizerFiles, loadModel, saveHFModel, save,
  toLlama2c, writeDirAtomic, type HFDType, type LoadedModel,
} from "../index.js";

export const CONVERT_FORMATS = ["hf", "tsformer", "llama2c"] as const;
export type ConvertFormat = (typeof CONVERT_FORMATS)[number];

export interface ConvertCliOptions { from: string; to: ConvertFormat; out: string; tokenizer?: string; dtype?: HFDType; overwrite?: boolean; maxShardSize?: number }

const utf8 = (o: unknown) => `${JSON.stringify(o, null, 2)}\n`;

/** The tokenizer as HF files, or null (with the reason) when it has no HF form. */
function hfTokenizerFiles(l: LoadedModel): { files: Record<string, string | Uint8Array>; note?: string } {
  if (l.tokenizerFiles && Object.keys(l.tokenizerFiles).length) return { files: l.tokenizerFiles };
  const t = l.tokenizer;
  if (t instanceof HFTokenizer) return { files: { "tokenizer.json": utf8(t.toJSON()), ...(t.config ? { "tokenizer_config.json": utf8(t.config) } : {}) } };
  if (t instanceof Llama2cTokenizer) return { files: Object.fromEntries(Object.entries(llama2cTokenizerFiles(t)).map(([k, v]) => [k, utf8(v)])) };
  return { files: {}, note: t ? "the character tokenizer has no HF tokenizer.json form; only the model was written" : "no tokenizer was found; only the model was written" };
}

export async function runConvert(o: ConvertCliOptions, log = (s: string) => console.error(s)): Promise<string> {
  if (!CONVERT_FORMATS.includes(o.to)) throw new Error(`--to ${JSON.stringify(o.to)}: expected one of ${CONVERT_FORMATS.join(", ")}`);
  const l = await loadModel(o.from, o.tokenizer);
  await writeModel(l, o, log);
  log(`convert: ${o.from} (${l.format}) -> ${o.out} (${o.to})`);
  return path.resolve(o.out);
}

/** Write a loaded model (and its tokenizer) in format o.to at o.out (convert, and merge's output). */
export async function writeModel(l: LoadedModel, o: Omit<ConvertCliOptions, "from" | "tokenizer">, log: (s: string) => void): Promise<void> {
  const out = o.out;
  const { model, tokenizer } = l;
  if (o.to === "hf") {
    const { files, note } = hfTokenizerFiles(l);
    const ids = { bos_token_id: tokenizer?.bosId, eos_token_id: tokenizer?.eosId };
    saveHFModel(model, out, {
      arch: l.hf?.arch, dtype: o.dtype ?? l.hf?.dtype ?? "float32", baseConfig: l.hf?.raw ?? ids,
      generationConfig: l.generationRaw ?? (tokenizer ? { ...ids } : null), files, overwrite: o.overwrite,
      maxShardBytes: o.maxShardSize,
    });
    if (note) log(`convert: ${note}`);
  } else if (o.to === "tsformer") {
    const files: Record<string, string | Uint8Array> = {};
    if (tokenizer instanceof CharTokenizer) files["tokenizer.json"] = utf8(tokenizer.toJSON());
    else Object.assign(files, hfTokenizerFiles(l).files);
    await save(model, out, { config: model.config, overwrite: o.overwrite, files });
  } else {
    const files: [string, Uint8Array][] = [["model.bin", toLlama2c(model)]];
    if (tokenizer instanceof Llama2cTokenizer) files.push(["tokenizer.bin", tokenizer.toBytes()]);
    else if (tokenizer instanceof HFTokenizer) files.push(["tokenizer.bin", llama2cFromTokenizerJson(tokenizer.toJSON(), "the tokenizer.json").toBytes()]);
    else log("convert: a character tokenizer has no llama2.c form; only model.bin was written");
    writeDirAtomic(out, files, { overwrite: o.overwrite });
  }
}

export interface MergeCliOptions { model: string; adapter: string; out: string; to?: ConvertFormat; overwrite?: boolean }

/** `tsformer merge`: base + LoRA adapter -> one model (PEFT's merge_and_unload), written like convert. */
export async function runMerge(o: MergeCliOptions, log = (s: string) => console.error(s)): Promise<string> {
  const l = await loadModel(o.model);
  const p = await loadPeft(l.model, o.adapter);
  if (!p.lora) throw new Error(`--adapter ${o.adapter} holds ${p.method} adapters, which add layers: they cannot be merged into the base's weights (only LoRA / DoRA can)`);
  mergeAndUnload(l.model);
  const to = o.to ?? (l.format === "llama2c" ? "llama2c" : l.format);
  if (!CONVERT_FORMATS.includes(to)) throw new Error(`--to ${JSON.stringify(to)}: expected one of ${CONVERT_FORMATS.join(", ")}`);
  await writeModel(l, { to, out: o.out, overwrite: o.overwrite }, log);
  log(`merge: ${o.model} + ${o.adapter} (${p.method}, r ${p.lora.r}) -> ${o.out} (${to})`);
  return path.resolve(o.out);
}
