// The Hugging Face seeds of a fuzz run, made with the public API of the tsformer under test:
// stories260K cut to its first two layers (a small seed; the weights stay real) as an HF directory
// (float32, one model.safetensors, generation_config.json, tok512 as tokenizer.json in Llama's
// converted layout, Llama-2-chat's real tokenizer_config.json with its chat template), and the same
// model in bfloat16 shards with model.safetensors.index.json.
// Usage: node hf-seeds.mjs <entry index.js> <seed dir> <repository root>
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [entry, dir, root] = process.argv.slice(2);
const T = await import(pathToFileURL(entry).href);

const LAYERS = 2;
const full = await T.loadLlama2c(join(root, "data/stories260K.bin"));
const layer = (name) => Number(/^blocks\.(\d+)\./.exec(name)?.[1] ?? -1); // -1: not a block's tensor
const sd = Object.fromEntries(Object.entries(full.stateDict()).filter(([k]) => layer(k) < LAYERS));
const model = { config: { ...full.config, nLayers: LAYERS }, stateDict: () => sd };

const tok = await T.Llama2cTokenizer.load(join(root, "data/tok512.bin"), 512);
const json = (o) => `${JSON.stringify(o, null, 2)}\n`;
const files = {
  "tokenizer.json": json(T.llama2cTokenizerFiles(tok)["tokenizer.json"]),
  "tokenizer_config.json": readFileSync(join(root, "test/fixtures/chat-templates/llama-2-7b-chat-hf/tokenizer_config.json")),
};
// Llama-2-chat's generation_config.json, with the sampling fields tsformer reads that it leaves out.
const generationConfig = { bos_token_id: 1, do_sample: true, eos_token_id: 2, max_length: 4096, pad_token_id: 0, temperature: 0.6, top_p: 0.9, top_k: 40, repetition_penalty: 1.1, max_new_tokens: 4 };

T.saveHFModel(model, join(dir, "hf"), { generationConfig, files });
// about 250 KB in bfloat16: three or four shards
T.saveHFModel(model, join(dir, "hf-sharded"), { dtype: "bfloat16", maxShardBytes: 80_000, generationConfig, files });
