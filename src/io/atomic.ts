// Atomic file writes: write a temp file beside the target, fsync, rename. A crash leaves either the
// old file or the new one, never half of it. Directories likewise (writeDirAtomic).

import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  // A fresh name opened exclusively ("wx"): never a file that already exists, whoever made it.
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  let created = false;
  try {
    const fd = openSync(tmp, "wx");
    created = true;
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (created) rmSync(tmp, { force: true });
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A directory written whole: the files go to a temp directory beside `dir`, which is renamed into
 * place. An existing non-empty `dir` is refused unless `overwrite`; then it is replaced only after the
 * new one is complete (renamed aside, the new one renamed in, the old one removed).
 */
export function writeDirAtomic(dir: string, files: [string, string | Uint8Array][], o: { overwrite?: boolean } = {}): void {
  const abs = resolve(dir);
  let old: string | null = null;
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) throw new Error(`cannot write ${dir}: it exists and is not a directory`);
    if (readdirSync(abs).length > 0) {
      if (!o.overwrite) throw new Error(`cannot write ${dir}: it exists and is not empty; pass overwrite (--overwrite) to replace it`);
      old = `${abs}.old-${process.pid}-${randomBytes(4).toString("hex")}`;
    }
  }
  mkdirSync(dirname(abs), { recursive: true });
  const tmp = mkdtempSync(join(dirname(abs), `.${basename(abs)}.writing-`));
  try {
    chmodSync(tmp, 0o777 & ~process.umask()); // mkdtemp makes it private; a saved model is not
    for (const [name, data] of files) writeFileAtomic(join(tmp, name), data);
    if (old) renameSync(abs, old);
    else rmSync(abs, { recursive: true, force: true }); // an empty directory
    renameSync(tmp, abs);
  } catch (e) {
    if (old && !existsSync(abs)) renameSync(old, abs);
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`cannot write ${dir} (${(e as Error).message}); nothing there was changed`, { cause: e });
  }
  if (old) rmSync(old, { recursive: true, force: true });
}
