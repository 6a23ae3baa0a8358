// Atomic file writes: write a temp file beside the target, fsync, rename. A crash leaves either the
// old file or the new one, never half of it.

import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

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
