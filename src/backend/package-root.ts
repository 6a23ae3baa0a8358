// Where tsformer is installed: the native loader finds build/Release there, the CLI its bundled data.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Directory holding the package.json of tsformer (works from src/ via tsx and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, "utf8")).name === "tsformer") return dir;
      } catch { /* not ours: keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json of tsformer not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** Path of a file bundled in tsformer's data/ folder (e.g. "stories260K.bin", "tinyshakespeare.txt"). */
export function dataPath(file: string): string {
  const p = join(packageRoot(), "data", file);
  if (!existsSync(p)) throw new Error(`dataPath: '${file}' is not bundled with tsformer (data/ holds stories260K.bin, tok512.bin, tinyshakespeare.txt)`);
  return p;
}

/** tsformer's version, from its package.json. */
export function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}
