// Fuzz driver: runs one tsformer loader on one (mutated) file, in its own process, through the public
// API: <entry> is a build's index.js, or src/index.ts under tsx (node --import tsx driver.mjs ...).
// Usage: node driver.mjs <entry> <action> <args...>
// Exit 0 on success; on a thrown error, one line "<error name>: <message>" on stderr and exit 1 (the
// harness tells tsformer's own errors from leaked JS errors by that name). Anything else (a signal, an
// uncaught exception with its stack) is a crash the harness reports.
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
