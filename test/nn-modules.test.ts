// Sequential / ModuleList (torch's state-dict names), activation modules, and T.save / T.load of any
// Module: bit-identical round trip, refusals that leave files and modules as they were.

import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";

class Net extends T.Module {
  readonly body: T.Sequential;
  readonly heads: T.ModuleList<T.Linear>;
  constructor(readonly d: number) {
    super();
    this.body = this.child("body", new T.Sequential(new T.Linear(4, d), new T.ReLU(), new T.LayerNorm(d), new T.Linear(d, d, false)));
    this.heads = this.child("heads", new T.ModuleList([new T.Linear(d, 2), new T.Linear(d, 3)]));
  }
  forward(x: T.Tensor): T.Tensor[] {
    const h = this.body.forward(x);
    return [...this.heads].map((m) => m.forward(h));
  }
}

describe("Sequential and ModuleList", () => {
  it("children are named 0, 1, ... as in torch", () => {
    assert.deepEqual(Object.keys(new Net(8).stateDict()), [
      "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "body.3.weight",
      "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
    ]);
  });

  it("Sequential applies its modules in order; at() counts from the end with a negative index", () => {
    const seq = new T.Sequential(new T.Linear(3, 5), new T.Tanh(), new T.Linear(5, 2));
    const x = T.randn([4, 3], { generator: new T.RandomGenerator(1) });
    const want = seq.at(2).forward(T.tanh(seq.at(0).forward(x)));
    assert.deepEqual(seq.forward(x).toTypedArray(), want.toTypedArray());
    assert.equal(seq.at(-1), seq.at(2));
    assert.equal(seq.length, 3);
    assert.throws(() => seq.at(3), /Sequential: index 3 is out of range for 3 modules/);
  });

  it("a child swapped by replaceChild is the one that runs", () => {
    const seq = new T.Sequential(new T.Linear(3, 3), new T.ReLU());
    seq.replaceChild("1", new T.Sigmoid());
    const x = T.tensor([[-50, 0, 50]]);
    const y = seq.forward(x).toTypedArray();
    assert.ok(y.every((v) => v > 0 && v < 1), `sigmoid outputs, got ${y}`);
  });

  it("ModuleList.append registers the next index", () => {
    const list = new T.ModuleList<T.Linear>().append(new T.Linear(2, 2)).append(new T.Linear(2, 1, false));
    assert.deepEqual(Object.keys(list.stateDict()), ["0.weight", "0.bias", "1.weight"]);
    assert.equal(list.numParameters(), 6 + 2);
  });
});

describe("T.save / T.load", () => {
  let root = "";
  beforeEach(() => { root = mkdtempSync(join(tmpdir(), "tsformer-save-")); });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("round trip into a fresh module is bit-identical, with the config", async () => {
    const net = new Net(8), dir = join(root, "net");
    await T.save(net, dir, { config: { d: 8 } });
    assert.deepEqual(readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
    assert.deepEqual(readdirSync(root), ["net"], "no temp directory left");
    const { stateDict, config } = await T.load(dir);
    assert.deepEqual(config, { d: 8 });
    const other = await T.load(dir, new Net((config as { d: number }).d));
    for (const [k, t] of Object.entries(net.stateDict())) {
      assert.deepEqual(other.stateDict()[k].toTypedArray(), t.toTypedArray(), k);
      assert.deepEqual(stateDict[k].toTypedArray(), t.toTypedArray(), k);
    }
    const x = T.randn([2, 4], { generator: new T.RandomGenerator(3) });
    assert.deepEqual(other.forward(x)[1].toTypedArray(), net.forward(x)[1].toTypedArray());
  });

  it("float64 parameters keep their dtype; no config gives null", async () => {
    class F64 extends T.Module {
      readonly w = this.param("w", T.randn([3, 2], { dtype: "float64", generator: new T.RandomGenerator(4) }));
    }
    const m = new F64(), dir = join(root, "m");
    await T.save(m, dir);
    const loaded = await T.load(dir);
    assert.equal(loaded.config, null);
    assert.equal(loaded.stateDict.w.dtype, "float64");
    assert.deepEqual(loaded.stateDict.w.toTypedArray(), m.w.toTypedArray());
  });

  it("refuses to replace a saved model unless overwrite; then replaces it", async () => {
    const dir = join(root, "m");
    await T.save(new T.Linear(2, 2), dir, { config: { v: 1 } });
    const before = readFileSync(join(dir, "model.safetensors"));
    await assert.rejects(T.save(new T.Linear(2, 2), dir), /save .*m: already holds a saved model \(model.safetensors, config.json\); pass \{ overwrite: true \} to replace it/);
    assert.deepEqual(readFileSync(join(dir, "model.safetensors")), before);
    const lin = new T.Linear(2, 2);
    await T.save(lin, dir, { overwrite: true });
    assert.ok(!existsSync(join(dir, "config.json")), "the replaced model's config is gone with it");
    assert.deepEqual((await T.load(dir)).stateDict.weight.toTypedArray(), lin.weight.toTypedArray());
  });

  it("saves into an existing directory that holds no model (other files kept)", async () => {
    writeFileSync(join(root, "notes.txt"), "mine");
    await T.save(new T.Linear(2, 2), root);
    assert.deepEqual(readdirSync(root).sort(), ["model.safetensors", "notes.txt"]);
  });

  it("a config that is not JSON is refused before anything is written", async () => {
    const dir = join(root, "m");
    await assert.rejects(T.save(new T.Linear(2, 2), dir, { config: { n: 1n } }), /config is not JSON-serializable/);
    await assert.rejects(T.save(new T.Linear(2, 2), dir, { config: () => 1 }), /config is not JSON-serializable/);
    assert.deepEqual(readdirSync(root), []);
  });

  it("loading into a mismatched module names the tensor and both shapes, and copies nothing", async () => {
    const dir = join(root, "m");
    await T.save(new T.Sequential(new T.Linear(4, 3), new T.Linear(3, 2)), dir);
    const target = new T.Sequential(new T.Linear(4, 3), new T.Linear(3, 5));
    const before = target.stateDict()["0.weight"].toTypedArray();
    await assert.rejects(T.load(dir, target), /load .*m: loadStateDict: 1.weight has shape \[2, 3\], the model expects \[5, 3\]/);
    assert.deepEqual(target.stateDict()["0.weight"].toTypedArray(), before, "nothing copied");
    await assert.rejects(T.load(dir, new T.Sequential(new T.Linear(4, 3))), /unexpected 1.bias, 1.weight/);
  });

  it("a directory without a saved model, a bad config.json, or a file far larger than the module are clear errors", async () => {
    await assert.rejects(T.load(join(root, "none")), /load .*none: no model.safetensors; expected a directory written by save\(\)/);
    const dir = join(root, "m");
    await T.save(new T.Linear(200, 200), dir);
    await assert.rejects(T.load(dir, new T.Linear(1, 1)), /model.safetensors is \d+ bytes; the module's weights take 8/);
    writeFileSync(join(dir, "config.json"), "{oops");
    await assert.rejects(T.load(dir), /config\.json: is not valid JSON/);
  });
});
