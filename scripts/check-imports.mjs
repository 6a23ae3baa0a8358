#!/usr/bin/env node
// Import check for src/: no import cycle (type-only imports included, as madge counts them) and no
// import that points up a floor; cli/ and serve/ use only the public API (src/index.ts). The floors, lowest first (docs/ARCHITECTURE.md); a folder may import its own floor and
// any floor below it. Usage: node scripts/check-imports.mjs [srcDir]   (exit 1 on any finding)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const FLOORS = [
  ["runtime", "backend"],
  ["tensor"],
  ["ops"],
  ["io", "tokenizers", "data"],
  ["nn"],
  ["models", "peft", "train", "generate", "generative"],
  ["index.ts"],
  ["cli", "serve"],
];
const PUBLIC_ONLY = new Set(["cli", "serve"]);
const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i])));

const root = resolve(process.argv[2] ?? "src");
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith(".ts")) files.push(p);
  }
})(root);

// import/export ... from "x" and import "x" at the start of a statement, and import("x") anywhere.
const IMPORT = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
const edges = new Map();
const problems = [];
for (const file of files) {
  // comments that start a line (a "/*" inside a string such as "src/**/*.ts" is not one)
  const src = readFileSync(file, "utf8").replace(/^\s*\/\*[\s\S]*?\*\//gm, "").replace(/^\s*\/\/[^\n]*/gm, "");
  const out = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith(".")) out.push(resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
  }
  edges.set(file, out);
}

const top = (f) => relative(root, f).split(/[\\/]/)[0];
for (const [file, deps] of edges) {
  const from = top(file);
  if (!floorOf.has(from)) { problems.push(`${relative(root, file)}: folder '${from}' has no floor in scripts/check-imports.mjs`); continue; }
  for (const dep of deps) {
    if (!edges.has(dep)) { problems.push(`${relative(root, file)}: imports ${relative(root, dep)}, which does not exist`); continue; }
    const to = top(dep);
    if (floorOf.get(to) > floorOf.get(from)) problems.push(`${relative(root, file)} (${from}) imports ${relative(root, dep)} (${to}): up a floor`);
    if (PUBLIC_ONLY.has(from) && to !== from && to !== "index.ts") problems.push(`${relative(root, file)} imports ${relative(root, dep)}: ${from}/ uses only the public API (src/index.ts)`);
  }
}

// Cycles: Tarjan's strongly connected components; any component of more than one file is a cycle.
let index = 0;
const idx = new Map(), low = new Map(), stack = [], onStack = new Set();
function strong(v) {
  idx.set(v, index); low.set(v, index); index++;
  stack.push(v); onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!edges.has(w)) continue;
    if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
    const self = (edges.get(v) ?? []).includes(v);
    if (comp.length > 1 || self) problems.push(`import cycle among ${comp.length} files: ${comp.map((f) => relative(root, f)).sort().join(", ")}`);
  }
}
for (const f of edges.keys()) if (!idx.has(f)) strong(f);

if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, no cycle, no import up a floor`);
