// Builds the native addon during `npm ci`. A failed build is not fatal: tsformer then says so once
// at run time and uses the pure-TypeScript backend.
// node-gyp is the copy bundled with npm: inside an npm lifecycle script npm exports its path as
// npm_config_node_gyp; otherwise it is found next to npm's own CLI (npm_execpath or the global npm).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

if (!existsSync("binding.gyp")) process.exit(0);

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  candidates.push(join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push("/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js");
  for (const c of candidates) if (c.endsWith(".js") && existsSync(c)) return [process.execPath, [c]];
  return ["node-gyp", []]; // on PATH (npm puts its node-gyp-bin there for lifecycle scripts)
}

// Headers of the running node when they are installed locally (no download); npm passes its own
// nodedir setting as npm_config_nodedir, which node-gyp reads itself.
const prefix = dirname(dirname(process.execPath));
const extra = !process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h"))
  ? [`--nodedir=${prefix}`] : [];
const [cmd, pre] = findNodeGyp();
const r = spawnSync(cmd, [...pre, "rebuild", ...extra], { stdio: "inherit" });
if (r.status !== 0) {
  console.warn("tsformer: native addon build failed; the pure-TypeScript backend will be used.");
}
