#!/usr/bin/env node
// The tsformer command line. Each command validates its flags and reports bad input in one line.

import { Command, InvalidArgumentError } from "commander";
import { printInfo } from "./info.js";

const program = new Command();
program.name("tsformer").description("Build, train, run and serve Transformer language models on the CPU.");

program.command("info")
  .description("print version, backend, thread count and CPU features")
  .option("--json", "print one JSON object")
  .action((o: { json?: boolean }) => printInfo(Boolean(o.json)));

export function intArg(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`tsformer: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
