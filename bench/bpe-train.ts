// Byte-level BPE training and encoding on TinyStories (data/tinystories-valid-head.txt): trainBpe to
// vocab 4096 (one special token), then encode MB/s of the whole corpus with the trained tokenizer.json,
// through the project's HFTokenizer (BpePipeline) and through @huggingface/tokenizers. Both cache the
// ids of each distinct word: "cold" is the first encode by a fresh tokenizer (built outside the timing),
// "warm" a repeat encode by the same one.
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { trainBpe } from "../src/tokenizers/bpe-train.js";
import { HFTokenizer } from "../src/tokenizers/hf.js";
import { fmt, jsonLine, printTable, stats, timeIt, type Stats } from "./common.js";

const CORPUS = "data/tinystories-valid-head.txt", VOCAB = 4096, REPS = 7;

/** MB/s of encode(text) over REPS rounds: each round a fresh tokenizer (cold) or the same one (warm). */
function encodeRate(make: () => (text: string) => unknown, text: string, warm: boolean): Stats {
  const mb = Buffer.byteLength(text, "utf8") / 1e6;
  const shared = make();
  shared(text);
  const rates: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const encode = warm ? shared : make();
    const t0 = performance.now();
    encode(text);
    rates.push(mb / ((performance.now() - t0) / 1000));
  }
  return stats(rates);
}

export function main(): void {
  const text = readFileSync(CORPUS, "utf8");
  const train = () => trainBpe(text, { vocabSize: VOCAB, specialTokens: ["<|endoftext|>"] });
  const trainS = stats(timeIt(train, REPS, 1));
  const json = train().tokenizerJson;

  const ours = () => { const t = HFTokenizer.fromJSON(json); return (s: string) => t.encode(s); };
  const lib = () => { const t = new Tokenizer(json, { clean_up_tokenization_spaces: false }); return (s: string) => t.encode(s); };
  const rates = {
    ours_cold: encodeRate(ours, text, false), ours_warm: encodeRate(ours, text, true),
    library_cold: encodeRate(lib, text, false), library_warm: encodeRate(lib, text, true),
  };
  const tokens = HFTokenizer.fromJSON(json).encode(text).length;
  const mb = Buffer.byteLength(text, "utf8") / 1e6;

  jsonLine({ bench: "bpe-train", corpus: CORPUS, mb, vocab: VOCAB, tokens, train_s: trainS, encode_mb_s: rates });
  const row = (s: Stats, d: number) => `${fmt(s.median, d)} (${fmt(s.min, d)}-${fmt(s.max, d)})`;
  printTable([`BPE, ${CORPUS} (${fmt(mb, 2)} MB -> ${tokens} tokens)`, `median (min-max), ${REPS} rounds`], [
    [`trainBpe vocab ${VOCAB}, s`, row(trainS, 3)],
    ["encode MB/s, HFTokenizer (BpePipeline), cold", row(rates.ours_cold, 2)],
    ["encode MB/s, HFTokenizer (BpePipeline), warm", row(rates.ours_warm, 2)],
    ["encode MB/s, @huggingface/tokenizers, cold", row(rates.library_cold, 2)],
    ["encode MB/s, @huggingface/tokenizers, warm", row(rates.library_warm, 2)],
  ]);
}
