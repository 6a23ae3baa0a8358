// Hugging Face tokenizer.json tokenizers of the BPE kind: byte-level (GPT-2's) and SentencePiece-style
// with byte fallback (Llama's, Mistral's). @huggingface/tokenizers builds the pipeline and decodes;
// encoding runs on BpePipeline (hf-bpe.ts) when it covers the pipeline (a ByteLevel pre-tokenizer or
// none), which follows HF's Rust crate where the library departs from it (hf-bpe.ts says how). Other
// pre-tokenizers (Llama 3's and Qwen's Split + ByteLevel) are encoded by the library.
// Special tokens follow HF's encode: added tokens are cut out of the text first (leftmost-longest);
// the post-processor's BOS/EOS are only added on request (encode(text, { bos: true })).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as LibTokenizer } from "@huggingface/tokenizers";
import { MAX_TOKENIZER_BYTES, brief, readJsonFile } from "../io/read.js";
import { BpePipeline, type BpeModelSpec } from "./hf-bpe.js";
import type { EncodeOptions, Tokenizer } from "./tokenizer.js";

export class HFTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HFTokenizerError";
  }
}

export interface HFTokenizerOptions {
  /** Names tokenizer.json in errors (default "tokenizer.json"). */
  source?: string;
  /** Names tokenizer_config.json in errors (default "tokenizer_config.json"). */
  configSource?: string;
  /** "library" encodes with @huggingface/tokenizers even where BpePipeline could (for comparisons). */
  engine?: "auto" | "library";
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
/** Token ids: non-negative int32 (BpePipeline keeps them in Int32Arrays). */
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 31;

/**
 * HF's ByteFallback decoder (decoders/byte_fallback.rs): a run of <0xNN> tokens that is not valid
 * UTF-8 becomes one U+FFFD per byte, where the library's TextDecoder gives one per invalid sequence.
 */
function rustByteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let run: number[] = [];
  const flush = () => {
    if (run.length === 0) return;
    try {
      out.push(strictUtf8.decode(Uint8Array.from(run)));
    } catch {
      out.push("\uFFFD".repeat(run.length));
    }
    run = [];
  };
  for (const t of tokens) {
    if (/^<0x[0-9A-Fa-f]{2}>$/.test(t)) run.push(parseInt(t.slice(3, 5), 16));
    else { flush(); out.push(t); }
  }
  flush();
  return out;
}
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The library's decoder objects, as its type declarations describe them (public config, decoders, decode_chain). */
interface LibDecoder { config?: { type?: unknown }; decoders?: LibDecoder[]; decode_chain(tokens: string[]): string[] }

function useRustByteFallback(d: LibDecoder | null): void {
  if (!d) return;
  if (d.config?.type === "ByteFallback") d.decode_chain = rustByteFallback;
  d.decoders?.forEach(useRustByteFallback);
}

interface AddedToken { id: number; content: string; special: boolean; normalized: boolean; plain: boolean }

/** The BPE model's fields, checked (HF's BPE deserializer refuses the same files). */
function bpeModel(model: Obj, bad: (field: string, problem: string) => HFTokenizerError): BpeModelSpec & { suffix: boolean } {
  const type = model.type ?? ("merges" in model ? "BPE" : undefined); // files without "type" are BPE when they have merges (models/mod.rs, ModelUntagged)
  if (type !== "BPE") {
    throw bad("model.type", `is ${brief(model.type)}; expected "BPE" (supported: BPE models, byte-level as GPT-2's or SentencePiece-style as Llama's; WordPiece, Unigram and WordLevel are not)`);
  }
  if (!isObj(model.vocab)) throw bad("model.vocab", `is ${brief(model.vocab)}; expected an object {token: id}`);
  const vocab = new Map<string, number>();
  for (const [tok, id] of Object.entries(model.vocab)) {
    if (!isId(id)) throw bad(`model.vocab[${JSON.stringify(tok)}]`, `is ${brief(id)}; expected an integer id in [0, 2^31)`);
    vocab.set(tok, id);
  }
  if (!Array.isArray(model.merges)) throw bad("model.merges", `is ${brief(model.merges)}; expected an array of "left right" strings or [left, right] pairs`);
  const merges = model.merges.map((m: unknown, i): [string, string] => {
    const pair = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw bad(`model.merges[${i}]`, `is ${brief(m)}; expected "left right" (one space) or [left, right]`);
    }
    for (const t of [pair[0], pair[1], pair[0] + pair[1]]) {
      if (!vocab.has(t)) throw bad(`model.merges[${i}]`, `${brief(m)} needs ${JSON.stringify(t)}, which is not in model.vocab`);
    }
    return [pair[0], pair[1]];
  });
  const flag = (k: string) => {
    const v = model[k] ?? false;
    if (typeof v !== "boolean") throw bad(`model.${k}`, `is ${brief(v)}; expected true or false`);
    return v;
  };
  const unk = model.unk_token ?? null;
  if (unk !== null && (typeof unk !== "string" || !vocab.has(unk))) throw bad("model.unk_token", `is ${brief(unk)}; expected null or a token of model.vocab`);
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
    throw bad("model.dropout", `is ${brief(model.dropout)}; expected null (BPE-dropout is a training-time augmentation: encoding with it is random)`);
  }
  if (model.continuing_subword_prefix) throw bad("model.continuing_subword_prefix", `is ${brief(model.continuing_subword_prefix)}; expected null or "" (not supported)`);
  return {
    vocab, merges, unkId: unk === null ? null : vocab.get(unk)!,
    fuseUnk: flag("fuse_unk"), byteFallback: flag("byte_fallback"), ignoreMerges: flag("ignore_merges"),
    suffix: typeof model.end_of_word_suffix === "string" && model.end_of_word_suffix !== "",
  };
}

function addedTokens(v: unknown, bad: (field: string, problem: string) => HFTokenizerError): AddedToken[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad("added_tokens", `is ${brief(v)}; expected an array of {id, content, ...}`);
  return v.map((t: unknown, i) => {
    if (!isObj(t) || !isId(t.id) || typeof t.content !== "string" || t.content === "") {
      throw bad(`added_tokens[${i}]`, `is ${brief(t)}; expected {"id": integer in [0, 2^31), "content": non-empty string, ...}`);
    }
    const special = t.special === true;
    // AddedToken::from defaults normalized to !special (added_vocabulary.rs).
    return { id: t.id, content: t.content, special, normalized: typeof t.normalized === "boolean" ? t.normalized : !special, plain: !t.lstrip && !t.rstrip && !t.single_word };
  });
}

/** The ids the post-processor puts before and after a single sequence (processors/template.rs, bert.rs, roberta.rs, sequence.rs). */
function templateIds(pp: unknown): { prefix: number[]; suffix: number[] } {
  const none = { prefix: [], suffix: [] };
  if (!isObj(pp)) return none;
  if (pp.type === "Sequence" && Array.isArray(pp.processors)) {
    const parts = pp.processors.map(templateIds);
    return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) };
  }
  if ((pp.type === "BertProcessing" || pp.type === "RobertaProcessing") && Array.isArray(pp.cls) && Array.isArray(pp.sep)) {
    return { prefix: isId(pp.cls[1]) ? [pp.cls[1]] : [], suffix: isId(pp.sep[1]) ? [pp.sep[1]] : [] };
  }
  if (pp.type !== "TemplateProcessing" || !Array.isArray(pp.single)) return none;
  const specials = isObj(pp.special_tokens) ? pp.special_tokens : {};
  const out: { prefix: number[]; suffix: number[] } = { prefix: [], suffix: [] };
  let side: number[] = out.prefix;
  for (const item of pp.single as unknown[]) {
    if (isObj(item) && isObj(item.Sequence)) side = out.suffix;
    else if (isObj(item) && isObj(item.SpecialToken)) {
      const st = specials[item.SpecialToken.id as string];
      if (isObj(st) && Array.isArray(st.ids)) side.push(...st.ids.filter(isId));
    }
  }
  return out;
}

export class HFTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosId?: number;
  /** The special added tokens (HF's special: true), by id. */
  readonly specialTokens: readonly { id: number; content: string }[];
  /** "fast": BpePipeline encodes; "library": @huggingface/tokenizers does (a pipeline BpePipeline does not cover). */
  readonly engine: "fast" | "library";
  /** tokenizer_config.json as given, or null. */
  readonly config: Readonly<Obj> | null;
  private readonly json: Obj;
  private readonly lib: LibTokenizer;
  private readonly fast: BpePipeline | null;
  private readonly ids = new Map<string, number>();
  private readonly hasToken: boolean[] = [];

  private constructor(json: Obj, config: Obj | null, o: Required<HFTokenizerOptions>) {
    this.json = json;
    this.config = config;
    const cfg = config ?? {};
    const bad = (field: string, problem: string) => new HFTokenizerError(`${o.source}: "${field}" ${problem}`);
    if (!isObj(json.model)) throw new HFTokenizerError(`${o.source}: "model" is ${brief(json.model)}; expected the tokenizer model object (is this a Hugging Face tokenizer.json?)`);
    const model = bpeModel(json.model, bad);
    const added = addedTokens(json.added_tokens, bad);
    for (const [t, id] of model.vocab) this.ids.set(t, id);
    for (const t of added) this.ids.set(t.content, t.id);
    for (const id of this.ids.values()) this.hasToken[id] = true;
    this.vocabSize = this.hasToken.length;
    this.specialTokens = added.filter((t) => t.special).map(({ id, content }) => ({ id, content })).sort((a, b) => a.id - b.id);

    const pre = json.pre_tokenizer ?? null;
    const byteLevel = isObj(pre) && pre.type === "ByteLevel" ? { addPrefixSpace: pre.add_prefix_space === true, useRegex: pre.use_regex !== false } : null;
    const covered = o.engine === "auto" && (pre === null || byteLevel !== null) && !model.suffix && added.every((t) => t.plain) && !cfg.remove_space && !cfg.do_lowercase_and_remove_accent;

    // The library wants every pipeline key present (null when absent) and the model typed; it needs
    // the merges only to encode, which BpePipeline does when it covers the pipeline.
    const libModel = { ...json.model, type: "BPE", ...(covered ? { merges: [] } : {}) };
    const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: json.added_tokens ?? [], model: libModel };
    try {
      this.lib = new LibTokenizer(full, cfg);
    } catch (e) {
      throw new HFTokenizerError(`${o.source}: @huggingface/tokenizers cannot build it: ${(e as Error).message}`);
    }
    useRustByteFallback(this.lib.decoder as LibDecoder | null);
    const normalize = this.lib.normalizer as ((s: string) => string) | null;
    this.fast = covered ? new BpePipeline({ model, added, byteLevel, normalize: normalize && ((s) => normalize(s)) }) : null;
    this.engine = this.fast ? "fast" : "library";

    // HF's default encoding (add_special_tokens=True): the post-processor's template, which
    // tokenizer_config's add_bos_token / add_eos_token rebuild (LlamaTokenizerFast.update_post_processor).
    const cfgBad = (field: string, problem: string) => new HFTokenizerError(`${o.configSource}: "${field}" ${problem}`);
    const tokenOf = (key: string): number | undefined => {
      const v = cfg[key];
      if (v === undefined || v === null) return undefined;
      const content = typeof v === "string" ? v : isObj(v) && typeof v.content === "string" ? v.content : undefined;
      if (content === undefined) throw cfgBad(key, `is ${brief(v)}; expected a token string or {"content": string}`);
      const id = this.ids.get(content);
      if (id === undefined) throw cfgBad(key, `is ${JSON.stringify(content)}, which is not a token of ${o.source}`);
      return id;
    };
    const flag = (key: string, id: number | undefined, fromTemplate: number[]): number[] => {
      const v = cfg[key];
      if (v === undefined || v === null) return fromTemplate;
      if (typeof v !== "boolean") throw cfgBad(key, `is ${brief(v)}; expected true or false`);
      if (v && id === undefined) throw cfgBad(key, `is true but there is no ${key === "add_bos_token" ? "bos_token" : "eos_token"}`);
      return v ? [id!] : [];
    };
    const template = templateIds(json.post_processor);
    const prefix = flag("add_bos_token", tokenOf("bos_token"), template.prefix);
    const eos = tokenOf("eos_token");
    const suffix = flag("add_eos_token", eos, template.suffix);
    if (prefix.length === 1) this.bosId = prefix[0];
    this.eosId = eos ?? (suffix.length === 1 ? suffix[0] : undefined);
  }

  /** From a parsed tokenizer.json and, optionally, tokenizer_config.json. */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig?: unknown, opts: HFTokenizerOptions = {}): HFTokenizer {
    const o: Required<HFTokenizerOptions> = { source: "tokenizer.json", configSource: "tokenizer_config.json", engine: "auto", ...opts };
    if (!isObj(tokenizerJson)) throw new HFTokenizerError(`${o.source}: is ${brief(tokenizerJson)}; expected a JSON object (a Hugging Face tokenizer.json)`);
    if (tokenizerConfig !== undefined && tokenizerConfig !== null && !isObj(tokenizerConfig)) {
      throw new HFTokenizerError(`${o.configSource}: is ${brief(tokenizerConfig)}; expected a JSON object`);
    }
    return new HFTokenizer(tokenizerJson, (tokenizerConfig ?? null) as Obj | null, o);
  }

  static async fromFiles(tokenizerJsonPath: string, configPath?: string, opts: Omit<HFTokenizerOptions, "source" | "configSource"> = {}): Promise<HFTokenizer> {
    const json = readJsonFile(tokenizerJsonPath, MAX_TOKENIZER_BYTES);
    const config = configPath === undefined ? undefined : readJsonFile(configPath);
    return HFTokenizer.fromJSON(json, config, { ...opts, source: tokenizerJsonPath, configSource: configPath ?? "tokenizer_config.json" });
  }

  /** dir/tokenizer.json, with dir/tokenizer_config.json when there is one. */
  static async fromDir(dir: string, opts: Omit<HFTokenizerOptions, "source" | "configSource"> = {}): Promise<HFTokenizer> {
    const config = join(dir, "tokenizer_config.json");
    return HFTokenizer.fromFiles(join(dir, "tokenizer.json"), existsSync(config) ? config : undefined, opts);
  }

  /** The tokenizer.json it was built from, as given (to save beside a checkpoint). */
  toJSON(): Readonly<Obj> {
    return this.json;
  }

  /** The id of a token (an added token's content or a model vocabulary entry). */
  tokenId(content: string): number | undefined {
    return this.ids.get(content);
  }

  /** HF's encode without special tokens (add_special_tokens=False); bos/eos add the post-processor's. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TypeError(`HFTokenizer.encode: text must be a string, got ${typeof text}`);
    if (opts.bos && this.bosId === undefined) throw new HFTokenizerError("HFTokenizer.encode: bos was asked for but this tokenizer's default encoding adds no single BOS token");
    if (opts.eos && this.eosId === undefined) throw new HFTokenizerError("HFTokenizer.encode: eos was asked for but this tokenizer has no eos_token");
    const ids = this.fast ? this.fast.encode(text) : this.lib.encode(text, { add_special_tokens: false }).ids;
    if (opts.bos) ids.unshift(this.bosId!);
    if (opts.eos) ids.push(this.eosId!);
    return ids;
  }

  /** HF's decode with skip_special_tokens=False and no clean-up; ids without a token are skipped, as HF does. */
  decode(ids: number[]): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new HFTokenizerError(`HFTokenizer.decode: id ${id} at position ${i} is out of range; expected an integer in [0, ${this.vocabSize})`);
      }
    });
    const known = ids.filter((id) => this.hasToken[id]);
    return known.length === 0 ? "" : this.lib.decode(known, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }
}
