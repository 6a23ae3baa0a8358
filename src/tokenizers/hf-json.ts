// tokenizer.json files built from other tokenizer formats, laid out as transformers' converters write
// them (src/transformers/convert_slow_tokenizer.py): GPT-2's encoder.json + vocab.bpe (GPT2Converter)
// and SentencePiece BPE pieces with byte fallback (LlamaConverter, merges from generate_merges).
import { Llama2cTokenizer } from "./llama2c.js";

/** sentencepiece_model.proto ModelProto.SentencePiece.Type. */
export const SPM_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
export type SpmPieceType = (typeof SPM_TYPE)[keyof typeof SPM_TYPE];

export interface SpmPiece { piece: string; score: number; type: SpmPieceType }

export interface SentencePieceJsonOptions {
  /** Prepend the BOS in HF's default encoding (LlamaTokenizerFast add_bos_token; default true). */
  addBos?: boolean;
  /** Append the EOS in HF's default encoding (add_eos_token; default false). */
  addEos?: boolean;
  /** Default "<s>" and "</s>", the SentencePiece trainer's and Llama's. */
  bosToken?: string;
  eosToken?: string;
}

const added = (id: number, content: string, special: boolean, normalized: boolean) =>
  ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized, special });

/**
 * GPT-2's tokenizer.json as GPT2Converter builds it (and openai-community/gpt2 ships it): BPE over
 * encoder.json with vocab.bpe's merges ("left right" strings), the ByteLevel pre-tokenizer without
 * prefix space, ByteLevel post-processor and decoder with tokenizers' defaults, and <|endoftext|>
 * (50256) as the one added token, special and normalized as GPT2Tokenizer added it.
 */
export function gpt2TokenizerJson(encoder: Record<string, number>, bpeMerges: string): Record<string, unknown> {
  // vocab.bpe: a "#version" line, then one "left right" merge per line (encoder.py get_encoder).
  const lines = bpeMerges.split("\n");
  const start = lines[0]?.startsWith("#version") ? 1 : 0;
  const merges = lines.slice(start).filter((l) => l !== "");
  merges.forEach((m, i) => {
    if (m.split(" ").length !== 2) throw new Error(`vocab.bpe line ${i + start + 1} is ${JSON.stringify(m)}; expected "left right"`);
  });
  const eot = encoder["<|endoftext|>"];
  if (eot === undefined) throw new Error('encoder.json has no "<|endoftext|>"; expected GPT-2\'s encoder');
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [added(eot, "<|endoftext|>", true, true)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: encoder, merges,
    },
  };
}

/**
 * generate_merges(vocab, vocab_scores): every split of every piece into two pieces, ordered by the
 * piece's score (descending), then by the lengths of the left and right parts (descending); among
 * equals, by the piece's id, then the parts' ids. Lengths count code points, as Python's.
 */
function spmMerges(pieces: readonly SpmPiece[], vocab: ReadonlyMap<string, number>): [string, string][] {
  const merges: { l: string; r: string; score: number; ll: number; rl: number }[] = [];
  pieces.forEach(({ piece, score }) => {
    const cps = [...piece];
    const local: typeof merges = [];
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join(""), r = cps.slice(k).join("");
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score, ll: k, rl: cps.length - k });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    merges.push(...local);
  });
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.rl - a.rl); // stable, as Python's sorted(reverse=True)
  return merges.map((m) => [m.l, m.r]);
}

/**
 * Llama's tokenizer.json from SentencePiece BPE pieces (LlamaConverter, legacy): BPE with byte
 * fallback and fused <unk>; normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer; decoder
 * Replace("▁" -> " "), ByteFallback, Fuse, Strip(1 leading space); post-processor "<s> $A". The
 * unknown and control pieces are special added tokens and user-defined ones plain added tokens, all
 * matched on the raw text (normalized: false).
 */
export function sentencepieceTokenizerJson(pieces: readonly SpmPiece[], opts: SentencePieceJsonOptions = {}): Record<string, unknown> {
  const { addBos = true, addEos = false, bosToken = "<s>", eosToken = "</s>" } = opts;
  const vocab = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (typeof p.piece !== "string" || p.piece === "" || vocab.has(p.piece)) throw new Error(`pieces[${id}] is ${JSON.stringify(p.piece)}; expected a distinct, non-empty piece`);
    if (!Object.values(SPM_TYPE).includes(p.type)) throw new Error(`pieces[${id}].type is ${JSON.stringify(p.type)}; expected a sentencepiece piece type 1..6`);
    vocab.set(p.piece, id);
  });
  const unk = pieces.find((p) => p.type === SPM_TYPE.UNKNOWN);
  if (!unk) throw new Error("pieces has no UNKNOWN piece (<unk>); expected a SentencePiece vocabulary");
  const special = (name: string, token: string) => {
    const id = vocab.get(token);
    if (id === undefined) throw new Error(`the ${name} ${JSON.stringify(token)} is not a piece`);
    return { id, token };
  };
  const bos = addBos ? special("BOS", bosToken) : null, eos = addEos ? special("EOS", eosToken) : null;
  // LlamaTokenizerFast.update_post_processor: "<s>:0 $A:0 </s>:0" and "... <s>:1 $B:1 </s>:1".
  const seq = (id: "A" | "B", typeId: number) => [
    ...(bos ? [{ SpecialToken: { id: bos.token, type_id: typeId } }] : []),
    { Sequence: { id, type_id: typeId } },
    ...(eos ? [{ SpecialToken: { id: eos.token, type_id: typeId } }] : []),
  ];
  const specials = Object.fromEntries([bos, eos].filter((t) => t !== null).map((t) => [t.token, { id: t.token, ids: [t.id], tokens: [t.token] }]));
  const kept = pieces.map((p, id) => ({ ...p, id })).filter((p) => p.type === SPM_TYPE.UNKNOWN || p.type === SPM_TYPE.CONTROL || p.type === SPM_TYPE.USER_DEFINED);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: kept.map((p) => added(p.id, p.piece, p.type !== SPM_TYPE.USER_DEFINED, false)),
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: { type: "TemplateProcessing", single: seq("A", 0), pair: [...seq("A", 0), ...seq("B", 1)], special_tokens: specials },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE", dropout: null, unk_token: unk.piece, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: Object.fromEntries(vocab), merges: spmMerges(pieces, vocab),
    },
  };
}

/**
 * A llama2.c tokenizer's vocabulary as the SentencePiece pieces it was exported from (llama2.c
 * tokenizer.py): a space back to "▁", ids 1 and 2 ("\n<s>\n", "\n</s>\n" in the .bin) back to <s> and
 * </s>; <unk> (id 0) is UNKNOWN, <0xNN> BYTE, the rest NORMAL.
 */
export function llama2cPieces(tok: Llama2cTokenizer): SpmPiece[] {
  return tok.pieces.map((raw, id): SpmPiece => {
    const text = Buffer.from(raw, "latin1").toString("utf8");
    if (id === 0) return { piece: text, score: tok.scores[id]!, type: SPM_TYPE.UNKNOWN };
    if (id === tok.bosId || id === tok.eosId) return { piece: id === tok.bosId ? "<s>" : "</s>", score: tok.scores[id]!, type: SPM_TYPE.CONTROL };
    if (/^<0x[0-9A-F]{2}>$/.test(text)) return { piece: text, score: tok.scores[id]!, type: SPM_TYPE.BYTE };
    return { piece: text.replaceAll(" ", "▁"), score: tok.scores[id]!, type: SPM_TYPE.NORMAL };
  });
}

/**
 * A llama2.c tokenizer as HF tokenizer files: tokenizer.json in Llama's SentencePiece-BPE layout and
 * a tokenizer_config.json that adds BOS as LlamaTokenizerFast does.
 */
export function llama2cTokenizerFiles(tok: Llama2cTokenizer): { "tokenizer.json": Record<string, unknown>; "tokenizer_config.json": Record<string, unknown> } {
  return {
    "tokenizer.json": sentencepieceTokenizerJson(llama2cPieces(tok)),
    "tokenizer_config.json": {
      tokenizer_class: "LlamaTokenizerFast", bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>",
      add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false, legacy: true,
    },
  };
}

/**
 * The way back: a SentencePiece-style BPE tokenizer.json (Llama's layout: byte fallback, "▁" for
 * spaces) as a llama2.c tokenizer. llama2.c's encoder merges the pair whose merged piece scores
 * highest, so a merged piece scores minus its merge rank (the first merge is best); other pieces
 * score 0. "▁" becomes a space and <s> / </s> become "\n<s>\n" / "\n</s>\n", as llama2.c's
 * tokenizer.py exports them.
 */
export function llama2cFromTokenizerJson(json: Readonly<Record<string, unknown>>, source = "tokenizer.json"): Llama2cTokenizer {
  const model = json.model as { type?: unknown; vocab?: unknown; merges?: unknown; byte_fallback?: unknown } | undefined;
  if (!model || model.byte_fallback !== true || typeof model.vocab !== "object" || model.vocab === null || !Array.isArray(model.merges)) {
    throw new Error(`${source}: not a SentencePiece-style BPE (model.byte_fallback true, vocab, merges); a llama2.c tokenizer can only hold that kind`);
  }
  const byId: string[] = [];
  for (const [piece, id] of Object.entries(model.vocab as Record<string, number>)) byId[id] = piece;
  if (byId.length !== Object.keys(model.vocab).length || byId.some((p) => p === undefined)) throw new Error(`${source}: model.vocab ids are not 0..n-1; expected a dense vocabulary`);
  const score = new Map<string, number>();
  (model.merges as unknown[]).forEach((m, rank) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : (m as [string, string]);
    if (!score.has(`${a}${b}`)) score.set(`${a}${b}`, -rank);
  });
  const raw = byId.map((p) => (p === "<s>" ? "\n<s>\n" : p === "</s>" ? "\n</s>\n" : p.replaceAll("▁", " ")));
  const bytes = raw.map((p) => Buffer.from(p, "utf8"));
  const size = 4 + bytes.reduce((s, b) => s + 8 + b.length, 0);
  const out = new Uint8Array(size), view = new DataView(out.buffer);
  view.setInt32(0, Math.max(...bytes.map((b) => b.length)), true);
  let off = 4;
  byId.forEach((p, id) => {
    view.setFloat32(off, score.get(p) ?? 0, true);
    view.setInt32(off + 4, bytes[id]!.length, true);
    out.set(bytes[id]!, off + 8);
    off += 8 + bytes[id]!.length;
  });
  return Llama2cTokenizer.fromBytes(out, source);
}
