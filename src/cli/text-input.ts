// Text inputs of the CLI (--data, --text): UTF-8 text files (readTextFile refuses binary and
// non-UTF-8 files and bounds the size); a missing file names the flag.

import { existsSync } from "node:fs";
import { readTextFile } from "../index.js";

export function readTextInput(file: string, flag: string): { text: string; file: string } {
  if (!existsSync(file)) throw new Error(`${flag} ${file} does not exist: expected a UTF-8 text file`);
  return { text: readTextFile(file, { label: `${flag} ${file}` }), file };
}
