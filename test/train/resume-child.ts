// Child process of the exact-resume test: trains, printing each step's loss, and blocks after step
// CHILD_BLOCKS_AFTER until the test kills it with SIGKILL. Usage: resume-child.ts <runDir>
import { train } from "../../src/train/trainer.js";
import { CHILD_BLOCKS_AFTER, resumeOptions } from "./resume-setup.js";

await train({
  ...resumeOptions(process.argv[2]),
  onStep: async ({ step, loss }) => {
    process.stdout.write(`${JSON.stringify({ step, loss })}\n`);
    if (step === CHILD_BLOCKS_AFTER) await new Promise(() => setInterval(() => {}, 1000));
  },
});
