// Benchmark dispatcher: `npm run bench -- NAME [args...]` imports bench/NAME.ts and calls its main().
import { readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// A benchmark is a file that exports main(argv); shared modules (common.ts, models.ts) are not listed.
const available = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && /^export (async )?function main\(/m.test(readFileSync(`${here}/${f}`, "utf8")))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`${name ? `unknown benchmark "${name}"` : "no benchmark named"}; available: ${available.join(", ") || "(none)"}`);
  console.error("usage: npm run bench -- NAME [args...]");
  process.exit(2);
}
const mod = (await import(pathToFileURL(`${here}/${name}.ts`).href)) as { main?: (argv: string[]) => unknown };
if (typeof mod.main !== "function") {
  console.error(`bench/${name}.ts does not export main(argv)`);
  process.exit(2);
}
await mod.main(rest);
