// Multi-token prediction at the command line (DeepSeek-V3 §2.2): `train --mtp D` writes checkpoints whose
// model.safetensors is the plain model and whose mtp.safetensors holds the modules, logs the main loss
// as the validation loss, resumes exactly; `generate --mtp` decodes with the modules, greedy output
// equal to the model's own; each bad input is one clear error.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";
import { runTrain, type TrainCliOptions } from "../src/cli/train.js";
import { runEval, runGenerate, type GenerateCliOptions } from "../src/cli/generate.js";
import { cliIn, failsWith, root } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "tsformer-mtp-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const data = join(dir, "corpus.txt");
const text = readFileSync(join(root, "data/tinyshakespeare.txt"), "utf8").slice(0, 4000);
writeFileSync(data, text);
// a tiny model: each run takes a fraction of a second
const TINY: TrainCliOptions = { data, dModel: 16, nLayers: 1, nHeads: 2, block: 16, batch: 4, evalIters: 1, sampleTokens: 0, lr: 1e-2, warmup: 0 };
const quiet = () => {};
const train = (o: TrainCliOptions) => runTrain({ ...TINY, ...o }, quiet);
const records = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
const file = (ck: string, name: string) => readFileSync(join(ck, name));

async function generateText(o: Partial<GenerateCliOptions>): Promise<{ out: string; log: string }> {
  let out = "", log = "";
  await runGenerate({ model: "", prompt: "First", maxNewTokens: 24, temperature: 0, seed: 0, stop: [], ...o }, (s) => { out += s; return true; }, (s) => { log += s; return true; });
  return { out, log };
}

describe("train --mtp", () => {
  const run = join(dir, "mtp");
  it("checkpoints the plain model in model.safetensors and the modules in mtp.safetensors; logs the main loss at evaluations", async () => {
    const { model } = await train({ steps: 3, ckptInterval: 1, mtp: 2, out: run });
    const ck = join(run, "last");
    // model.safetensors: the plain model's own names, loadable as it (and equal to the trained base)
    const keys = Object.keys(T.decodeSafetensors(file(ck, "model.safetensors")).tensors).sort();
    assert.deepEqual(keys, Object.keys(new T.TransformerLM(model.config).stateDict()).sort());
    const loaded = await T.loadModel(ck);
    assert.ok(loaded.model instanceof T.TransformerLM);
    assert.ok(Number.isFinite((await runEval({ model: ck, text: data })).loss));
    for (const [k, t] of Object.entries(model.stateDict())) assert.deepEqual(loaded.model.stateDict()[k].toTypedArray(), t.toTypedArray(), k);
    // mtp.safetensors: depth, weight and the modules of a fresh MTPModules(config, 2)
    const { mtp, weight } = await T.loadMTPModules(ck);
    assert.equal(mtp.depth, 2);
    assert.equal(weight, T.MTP_DEFAULT_WEIGHT);
    assert.deepEqual(T.decodeSafetensors(file(ck, T.MTP_FILE)).metadata, { format: "pt", depth: "2", weight: String(T.MTP_DEFAULT_WEIGHT) });
    assert.deepEqual(Object.keys(mtp.stateDict()).sort(), Object.keys(new T.MTPModules(model.config, 2).stateDict()).sort());
    const first = T.decodeSafetensors(file(join(run, "checkpoint-1"), T.MTP_FILE)).tensors;
    const moved = Object.entries(T.decodeSafetensors(file(ck, T.MTP_FILE)).tensors).filter(([k, t]) => !t.data.every((v, i) => v === first[k].data[i]));
    assert.ok(moved.length > 0, "the modules train");
    assert.equal(JSON.parse(file(ck, "training_args.json").toString()).mtp, 2);
    // each step's loss is L_main + lambda / D * (L^1 + L^2) (eq. 25) of the logged terms
    const steps = records(run).filter((r) => r.type === "train");
    assert.equal(steps.length, 3);
    for (const r of steps) {
      const a = r.aux as Record<string, number>;
      assert.deepEqual(Object.keys(a).sort(), ["lm", "mtp1", "mtp2"]);
      const want = a.lm + (T.MTP_DEFAULT_WEIGHT / 2) * (a.mtp1 + a.mtp2);
      assert.ok(Math.abs((r.loss as number) - want) < 1e-5 * want, `loss ${r.loss} vs ${want}`);
    }
    // the validation loss is the plain model's next-token loss on the trainer's validation batches
    const tok = T.CharTokenizer.fromText(text);
    const { val } = new T.TokenDataset(Int32Array.from(tok.encode(text))).split(0.1);
    const batch = new T.BatchSampler(val, 4, 16, 1337 + 2).next();  // the trainer's fixed validation stream (seed + 2)
    const lm = T.noGrad(() => T.lmObjective(loaded.model.eval(), batch).loss.item());
    const evals = records(run).filter((r) => r.type === "eval");
    assert.ok(Math.abs((evals.at(-1)!.valLoss as number) - lm) < 1e-6, `valLoss ${evals.at(-1)!.valLoss} vs the model's LM loss ${lm}`);
  });

  it("N steps equal K steps + --resume to N, bit for bit (base, modules, optimizer)", async () => {
    const r2 = join(dir, "mtp-resume");
    await train({ steps: 4, ckptInterval: 2, mtp: 2, mtpWeight: 0.5, dropout: 0.1, out: r2 });
    const want = ["model.safetensors", T.MTP_FILE, "optimizer.safetensors"].map((f) => file(join(r2, "checkpoint-4"), f));
    await runTrain({ resume: join(r2, "checkpoint-2") }, quiet);
    const got = ["model.safetensors", T.MTP_FILE, "optimizer.safetensors"].map((f) => file(join(r2, "checkpoint-4"), f));
    for (let i = 0; i < want.length; i++) assert.ok(got[i].equals(want[i]), ["model.safetensors", T.MTP_FILE, "optimizer.safetensors"][i]);
    assert.equal((await T.loadMTPModules(join(r2, "last"))).weight, 0.5);
  });

  it("the trainer refuses checkpoint parts that leave some of the model's state out", async () => {
    const base = new T.TransformerLM(T.parseModelConfig(JSON.parse(file(join(run, "last"), "config.json").toString())));
    const lm = new T.MTPLM(base, { depth: 1 });
    const o = { model: lm, modelConfig: {}, train: new T.TokenDataset(new Int32Array(64)), blockSize: 8, batchSize: 1, maxSteps: 0, runDir: join(dir, "parts"),
      schedule: { kind: "cosine" as const, lr: 1e-3, minLr: 1e-4, warmupSteps: 0, decaySteps: 1 } };
    await assert.rejects(T.train({ ...o, checkpointParts: { model: base, files: {} } }), /checkpointParts leave out mtp\.layers\.0\./);
  });

  it("refuses a resume that changes --mtp, --mtp-weight without --mtp, and packed documents", async () => {
    const plain = join(dir, "plain");
    await train({ steps: 1, out: plain });
    await assert.rejects(runTrain({ resume: run, mtp: 3 }, quiet), /--mtp 3 conflicts with .*a run with --mtp 2: a resumed run keeps its MTP modules; use --init-from/);
    await assert.rejects(runTrain({ resume: plain, mtp: 2 }, quiet), /--mtp 2 conflicts with .*a run without MTP modules/);
    await assert.rejects(train({ steps: 1, mtpWeight: 0.5, out: join(dir, "w") }), /--mtp-weight needs --mtp D/);
    await assert.rejects(train({ steps: 1, mtp: 2, batching: "packed", out: join(dir, "p") }), /--mtp needs padded rows or stream windows: --batching packed/);
    // resuming the plain run as it was still works
    assert.equal((await runTrain({ resume: plain }, quiet)).summary.finalStep, 1);
    failsWith(cliIn(dir)("train", "--data", data, "--mtp", "0", "--out", join(dir, "z")), /--mtp expects an integer >= 1, got '0'/);
  });
});

describe("generate --mtp", () => {
  const run = join(dir, "gen");
  it("decodes with the modules of --model's checkpoint (or of DIR): greedy output is the model's own, stats on stderr", async () => {
    await train({ steps: 30, mtp: 2, out: run });
    const ck = join(run, "last");
    const plain = await generateText({ model: ck });
    const own = await generateText({ model: ck, mtp: true });
    const other = await generateText({ model: ck, mtp: ck });
    assert.equal(own.out, plain.out);
    assert.equal(other.out, plain.out);
    assert.equal(plain.log, "");
    assert.match(own.log, /^mtp: acceptance per depth \d\.\d\d \/ (\d\.\d\d|-) \(\d+ \/ \d+ of \d+ \/ \d+ verified drafts kept\), \d\.\d\d tokens per verify round \(\d+ rounds\), \d+ model calls\n$/);
    // the flag as typed: `--mtp` without a value is --model's own
    const r = cliIn(dir)("generate", "--model", ck, "--prompt", "First", "--max-new-tokens", "24", "--temperature", "0", "--mtp");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, plain.out);
    assert.match(r.stderr, /^mtp: acceptance per depth/m);
  });

  it("one clear error each: with --draft or --medusa, modules for another base, a checkpoint without modules", async () => {
    const ck = join(run, "last");
    await assert.rejects(generateText({ model: ck, mtp: true, draft: ck }), /--mtp and --draft are two ways to propose tokens: give one/);
    await assert.rejects(generateText({ model: ck, mtp: true, medusa: ck }), /--mtp and --medusa are two ways to propose tokens: give one/);
    const narrow = join(dir, "narrow");
    await train({ steps: 1, mtp: 1, dModel: 8, out: narrow });
    await assert.rejects(generateText({ model: ck, mtp: join(narrow, "last") }), /--mtp .*narrow.*: the MTP modules are for a model with dModel 8 but this model has 16; they were trained for another base/);
    const plain = join(dir, "plain");
    await assert.rejects(generateText({ model: join(plain, "last"), mtp: true }), /--mtp .*plain.*: no mtp\.safetensors; expected a checkpoint of a run trained with MTP modules \(tsformer train --mtp D\)/);
  });
});
