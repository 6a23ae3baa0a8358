// Preloaded into every fuzz child (node --import): reports the process's peak RSS (KiB) on a normal
// exit as a last stderr line, which the harness strips. A killed process reports nothing; the harness
// polls /proc/<pid>/status for that case.
import { writeSync } from "node:fs";

process.on("exit", () => writeSync(2, `\nfuzz-max-rss=${process.resourceUsage().maxRSS}\n`));
