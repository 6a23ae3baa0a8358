// `tsformer tokenizer train`: learn a byte-level BPE vocabulary on a text file and write it as an HF
// tokenizer directory (tokenizer.json + tokenizer_config.json), usable by `tsformer train --tokenizer`
// and by HF tokenizers / transformers' PreTrainedTokenizerFast.

import cliProgress from "cli-progress";
import { HFTokenizer, readTextFile, trainBpe, writeDirAtomic } from "../index.js";

export interface TokenizerTrainOptions { data: string; vocabSize: number; out: string; special: string[]; minFrequency?: number; overwrite?: boolean }

export interface TokenizerTrainSummary { vocabSize: number; merges: number; seconds: number; bytes: number; tokens: number; bytesPerToken: number; out: string }

export function runTokenizerTrain(o: TokenizerTrainOptions, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): TokenizerTrainSummary {
  const text = readTextFile(o.data, { label: `--data ${o.data}` });
  const special = o.special.length ? o.special : ["<|endoftext|>"];
  const t0 = performance.now();
  const bar = stream.isTTY ? new cliProgress.SingleBar({ stream, format: "bpe |{bar}| {value}/{total} tokens | ETA {eta_formatted}" }, cliProgress.Presets.shades_classic) : null;
  let last = 0;
  const trained = trainBpe(text, {
    vocabSize: o.vocabSize, specialTokens: special, minFrequency: o.minFrequency,
    onProgress: (p) => {
      if (!bar) {
        if (p.vocabSize - last >= 1000 || p.vocabSize === p.target) { stream.write(`bpe ${p.vocabSize}/${p.target} tokens\n`); last = p.vocabSize; }
        return;
      }
      if (p.merges === 1) bar.start(p.target, p.vocabSize);
      bar.update(p.vocabSize);
    },
  });
  bar?.stop();
  const seconds = (performance.now() - t0) / 1000;
  const config = { tokenizer_class: "PreTrainedTokenizerFast", bos_token: special[0], eos_token: special[0], unk_token: null, clean_up_tokenization_spaces: false };
  const tok = HFTokenizer.fromJSON(trained.tokenizerJson, config, { source: `${o.out}/tokenizer.json` });
  const tokens = tok.encode(text).length, bytes = Buffer.byteLength(text);
  writeDirAtomic(o.out, [
    ["tokenizer.json", `${JSON.stringify(trained.tokenizerJson)}\n`],
    ["tokenizer_config.json", `${JSON.stringify(config, null, 2)}\n`],
  ], { overwrite: o.overwrite });
  return { vocabSize: trained.vocab.size, merges: trained.merges.length, seconds, bytes, tokens, bytesPerToken: bytes / tokens, out: o.out };
}
