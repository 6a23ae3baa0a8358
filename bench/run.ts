// Benchmark dispatcher: `npm run bench -- NAME [args...]` imports bench/NAME.ts and calls its main().
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && f !== "common.ts")
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
