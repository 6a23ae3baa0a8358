// Checkpoint directories: round trip, atomic replace, failure mid-write, recovery, corrupt-file errors.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as T from "../../src/index.js";
import { Module } from "../../src/nn/module.js";
import { AdamW, defaultParamGroups } from "../../src/train/optim.js";
import { CheckpointError, loadCheckpoint, saveCheckpoint, type Checkpoint } from "../../src/io/checkpoint.js";

class Tiny extends Module {
  emb = this.param("tok_emb.weight", T.randn([7, 4], { generator: new T.RandomGenerator(1) }));
  w = this.param("out.weight", T.randn([7, 4], { generator: new T.RandomGenerator(2) }));
  b = this.param("out.bias", T.randn([7], { generator: new T.RandomGenerator(3) }));
}

function makeCheckpoint(step: number): Checkpoint {
  const model = new Tiny();
  const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 0.01 });
  for (const p of model.parameters()) p.grad = T.randn(p.shape, { generator: new T.RandomGenerator(step) });
  opt.step();
  return {
    config: { vocabSize: 7, dModel: 4 },
    model: model.stateDict(),
    optimizer: opt.stateDict(),
    trainerState: { step, dataRng: { seed: 5, counter: 3 * step }, dropoutRng: null, bestValLoss: 2.5, trainConfig: { batchSize: 2 } },
    extraFiles: { "tokenizer.json": { kind: "char", vocab: "abcdefg" } },
  };
}

const roots: string[] = [];
const tmpRoot = async () => { const r = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-ckpt-")); roots.push(r); return r; };
after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));
const siblings = async (dir: string) => (await fs.readdir(path.dirname(dir))).filter((n) => n !== path.basename(dir));

function assertSame(got: Checkpoint, want: Checkpoint): void {
  assert.deepEqual(got.config, want.config);
  assert.deepEqual(got.trainerState, want.trainerState);
  assert.deepEqual(got.optimizer.meta, want.optimizer.meta);
  assert.deepEqual(got.optimizer.tensors, want.optimizer.tensors);
  assert.deepEqual(Object.keys(got.model).sort(), Object.keys(want.model).sort());
  for (const [k, t] of Object.entries(want.model)) {
    assert.deepEqual(got.model[k].shape, t.shape);
    assert.deepEqual(got.model[k].data, t.data, k);
  }
  assert.deepEqual(got.extraFiles, want.extraFiles);
}

describe("checkpoint", () => {
  it("round trip, and a second save replaces the first leaving no temp or old directories", async () => {
    const dir = path.join(await tmpRoot(), "ckpt");
    const a = makeCheckpoint(5);
    await saveCheckpoint(dir, a);
    assert.deepEqual((await fs.readdir(dir)).sort(), ["config.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json", "trainer_state.json"]);
    assertSame(await loadCheckpoint(dir), a);
    const b = makeCheckpoint(10);
    await saveCheckpoint(dir, b);
    assertSame(await loadCheckpoint(dir), b);
    assert.deepEqual(await siblings(dir), []);
    const loaded = new Tiny();
    loaded.loadStateDict((await loadCheckpoint(dir)).model);
    assert.deepEqual(loaded.w.data, b.model["out.weight"].data);
  });

  it("a failure mid-write keeps the previous checkpoint intact and removes the temp directory", async () => {
    const dir = path.join(await tmpRoot(), "ckpt");
    const good = makeCheckpoint(5);
    await saveCheckpoint(dir, good);
    // The extra file is serialised last, after the model and optimizer files are written: BigInt throws.
    const bad = { ...makeCheckpoint(10), extraFiles: { "tokenizer.json": { n: 1n } } };
    await assert.rejects(saveCheckpoint(dir, bad), (e: Error) => e instanceof CheckpointError && /save failed .*BigInt.*previous checkpoint, if any, is unchanged/.test(e.message));
    assertSame(await loadCheckpoint(dir), good);
    assert.deepEqual(await siblings(dir), []);
    await assert.rejects(saveCheckpoint(dir, { ...good, extraFiles: { "config.json": {} } }), /extra file name "config.json" is invalid/);
  });

  it("unmarked leftovers (no save marker) are never touched by a load; the error names the old dir", async () => {
    const dir = path.join(await tmpRoot(), "ckpt");
    const good = makeCheckpoint(5);
    await saveCheckpoint(dir, good);
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number; // a pid that has exited
    await fs.rename(dir, `${dir}.old-${dead}`); // killed between "rename old aside" and "rename new in"
    await fs.mkdir(`${dir}.tmp-${dead}`);
    await fs.writeFile(path.join(`${dir}.tmp-${dead}`, "config.json"), "{");
    // Recovery of marked leftovers: test/files-safety.test.ts.
    await assert.rejects(loadCheckpoint(dir), new RegExp(`ckpt\\.old-${dead} may hold an earlier checkpoint`));
    assert.equal((await siblings(dir)).length, 2);
  });

  it("corrupt or missing files give one error naming the checkpoint, the file and the problem", async () => {
    const fresh = async () => {
      const dir = path.join(await tmpRoot(), "ckpt");
      await saveCheckpoint(dir, makeCheckpoint(5));
      return dir;
    };
    let dir = await fresh();
    const model = path.join(dir, "model.safetensors");
    const bytes = await fs.readFile(model);
    await fs.writeFile(model, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(loadCheckpoint(dir), (e: Error) => e instanceof CheckpointError && e.message.startsWith(`checkpoint ${dir}: `) && /model\.safetensors.*truncated/.test(e.message));

    dir = await fresh();
    await fs.writeFile(path.join(dir, "trainer_state.json"), '{"step": 5, "dataRng": ');
    await assert.rejects(loadCheckpoint(dir), /ckpt: trainer_state\.json is not valid JSON/);

    dir = await fresh();
    await fs.writeFile(path.join(dir, "trainer_state.json"), JSON.stringify({ step: -1, dataRng: { seed: 1, counter: 0 }, dropoutRng: null, bestValLoss: null, trainConfig: {} }));
    await assert.rejects(loadCheckpoint(dir), /trainer_state\.json is invalid: step: /);

    dir = await fresh();
    await fs.rm(path.join(dir, "optimizer.safetensors"));
    await fs.rm(path.join(dir, "config.json"));
    await assert.rejects(loadCheckpoint(dir), /ckpt: missing files config\.json, optimizer\.safetensors; expected config\.json, model\.safetensors/);

    await assert.rejects(loadCheckpoint(path.join(dir, "nope")), /nope: cannot open the checkpoint directory \(ENOENT\)/);
  });
});
