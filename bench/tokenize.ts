// Tokenizer encode throughput in MB/s of UTF-8 text: HFTokenizer (its own BPE pipeline, and the
// @huggingface/tokenizers engine) on GPT-2's tokenizer.json against gpt-3-encoder, and on tok512.bin
// converted to a Llama-style tokenizer.json against Llama2cTokenizer. Corpus: Tiny Shakespeare,
// the TinyStories head and src/**/*.ts, encoded paragraph by paragraph. Rounds alternate the
// implementations; the first round warms caches and JIT and is not counted (caches stay warm).
// Options: --rounds=N (default 5), --only=gpt2|tok512.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { encode as gpt2Encode } from "gpt-3-encoder";
import { HFTokenizer } from "../src/tokenizers/hf.js";
import { gpt2TokenizerJson, llama2cPieces, sentencepieceTokenizerJson } from "../src/tokenizers/hf-json.js";
import { Llama2cTokenizer } from "../src/tokenizers/llama2c.js";
import { fmt, jsonLine, printTable, stats } from "./common.js";

interface Impl { name: string; encode: (s: string) => number[] }
interface Suite { name: string; impls: Impl[] }

function corpus(): string[] {
  const walk = (d: string): string[] => readdirSync(d).sort().flatMap((f) => {
    const p = join(d, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });
  const text = [
    readFileSync("data/tinyshakespeare.txt", "utf8"),
    readFileSync("data/tinystories-valid-head.txt", "utf8").replaceAll("<|endoftext|>\n", "\n"),
    walk("src").map((f) => readFileSync(f, "utf8")).join("\n").replaceAll("<|endoftext|>", "<|end|>"),
  ].join("\n");
  return text.split(/(?<=\n\n)/);
}

async function suites(only: string | undefined): Promise<Suite[]> {
  const out: Suite[] = [];
  if (!only || only === "gpt2") {
    const json = gpt2TokenizerJson(JSON.parse(readFileSync("node_modules/gpt-3-encoder/encoder.json", "utf8")) as Record<string, number>,
      readFileSync("node_modules/gpt-3-encoder/vocab.bpe", "utf8"));
    const fast = HFTokenizer.fromJSON(json), lib = HFTokenizer.fromJSON(json, null, { engine: "library" });
    out.push({ name: "GPT-2", impls: [
      { name: "HFTokenizer", encode: (s) => fast.encode(s) },
      { name: "HFTokenizer (library engine)", encode: (s) => lib.encode(s) },
      { name: "gpt-3-encoder", encode: gpt2Encode },
    ] });
  }
  if (!only || only === "tok512") {
    const l2c = await Llama2cTokenizer.load("data/tok512.bin", 512);
    const json = sentencepieceTokenizerJson(llama2cPieces(l2c));
    const fast = HFTokenizer.fromJSON(json), lib = HFTokenizer.fromJSON(json, null, { engine: "library" });
    out.push({ name: "tok512", impls: [
      { name: "HFTokenizer", encode: (s) => fast.encode(s, { bos: true }) },
      { name: "HFTokenizer (library engine)", encode: (s) => lib.encode(s, { bos: true }) },
      { name: "Llama2cTokenizer", encode: (s) => l2c.encode(s, { bos: true }) },
    ] });
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const arg = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
  const rounds = Number(arg("rounds") ?? 5);
  const chunks = corpus();
  const mb = Buffer.byteLength(chunks.join("")) / 1e6;
  const rows: string[][] = [];
  for (const suite of await suites(arg("only"))) {
    const rates = suite.impls.map(() => [] as number[]);
    const tokens = suite.impls.map(() => 0);
    for (let r = 0; r <= rounds; r++) {
      suite.impls.forEach((impl, k) => {
        let n = 0;
        const t0 = performance.now();
        for (const c of chunks) n += impl.encode(c).length;
        const s = (performance.now() - t0) / 1000;
        if (r > 0) rates[k]!.push(mb / s);
        tokens[k] = n;
      });
    }
    const ref = stats(rates[rates.length - 1]!).median;
    suite.impls.forEach((impl, k) => {
      const st = stats(rates[k]!);
      jsonLine({ bench: "tokenize", tokenizer: suite.name, impl: impl.name, corpus_mb: mb, chunks: chunks.length, tokens: tokens[k], mb_per_s: st, vs_reference: st.median / ref });
      rows.push([suite.name, impl.name, `${fmt(st.median, 2)} (${fmt(st.min, 2)}-${fmt(st.max, 2)})`, String(tokens[k]), fmt(st.median / ref, 2)]);
    });
  }
  printTable([`encode, ${fmt(mb, 2)} MB in ${chunks.length} paragraphs`, "implementation", "MB/s median (min-max)", "tokens", "vs last row"], rows);
}
