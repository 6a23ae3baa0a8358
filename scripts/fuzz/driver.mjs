// Fuzz driver: runs one tsformer loader on one (mutated) file, in its own process, through the public
// API: <entry> is a build's index.js, or src/index.ts under tsx (node --import tsx driver.mjs ...).
// Usage: node driver.mjs <entry> <action> <args...>
// Exit 0 on success; on a thrown error, one line "<error name>: <message>" on stderr and exit 1 (the
// harness tells tsformer's own errors from leaked JS errors by that name). Anything else (a signal, an
// uncaught exception with its stack) is a crash the harness reports.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [entry, action, ...args] = process.argv.slice(2);
const T = await import(pathToFileURL(entry).href);

const actions = {
  readSafetensors: async (f) => T.readSafetensors(f),
  loadCheckpoint: async (d) => T.loadCheckpoint(d),
  loadModel: async (p, tok) => T.loadModel(p, tok),
  readLlama2c: async (f) => T.readLlama2cCheckpoint(f),
  llama2cTokenizer: async (f, vocab) => T.Llama2cTokenizer.load(f, Number(vocab)),
  charTokenizer: async (f) => {
    let json;
    // A file that is not JSON never reaches fromJSON: the caller (loadCheckpoint) reads it first, bounded.
    try { json = T.readJsonFile(f); } catch (e) { throw Object.assign(new Error(`${f}: not JSON (${e.message})`), { name: "NotJSON" }); }
    return T.CharTokenizer.fromJSON(json, f);
  },
  // an HF tokenizer.json (with tokenizer_config.json beside it): load, then a round trip of a text
  hfTokenizer: async (f, textFile) => {
    const tok = await T.loadTokenizer(f);
    tok.decode(tok.encode(readFileSync(textFile, "utf8"), tok.bosId !== undefined ? { bos: true } : {}));
  },
  // a tokenizer_config.json's chat template rendering a conversation with every role
  chatTemplate: async (f) => T.ChatTemplate.fromFile(f).render([
    { role: "system", content: "Tell stories." }, { role: "user", content: "Hi there" },
    { role: "assistant", content: "Once upon a time" }, { role: "user", content: "Tell me about a cat" },
  ], { addGenerationPrompt: true }),
};

try {
  if (!actions[action]) throw new Error(`unknown action ${action}; expected one of ${Object.keys(actions).join(", ")}`);
  await actions[action](...args);
} catch (e) {
  const name = e instanceof Error ? e.name : typeof e;
  const msg = (e instanceof Error ? e.message : String(e)).split("\n").join(" | ");
  process.stderr.write(`${name}: ${msg}\n`);
  process.exit(1);
}
