// The image-method seam and its driver (generative/train-images.ts) with the flows as methods: the
// registry, the flows' config checks, their bits/dim loss and samples, the data-shape check, exact resume
// (N steps in one go == K steps, stop, resume to N: identical weights, optimizer state and losses), and
// the checkpoint errors of a run directory. Tiny flows on a handful of MNIST images: seconds.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import * as T from "../src/index.js";
import { imageMethod, IMAGE_METHODS, trainImages, loadImageRun, writeSampleGrid } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "tsformer-seam-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const TINY = { levels: 1, depth: 1, hidden: 8 };
// 32 images, 8 a batch: an epoch is 4 steps, so 6 steps cross an epoch boundary (a new shuffle)
const RUN = { config: TINY, batch: 8, limit: 32, warmup: 2, seed: 3 };
const read = (run: string, f: string) => readFileSync(join(run, "checkpoint", f));

describe("registry", () => {
  test("lists the flows; an unknown name is one error naming the known ones", () => {
    for (const m of ["realnvp", "glow"]) assert.ok(IMAGE_METHODS.includes(m), `${m} is registered`);
    assert.throws(() => imageMethod("vae"), (e: Error) => /unknown generative method "vae"; expected one of: /.test(e.message) && IMAGE_METHODS.every((m) => e.message.includes(m)));
  });
});

describe("flow methods", () => {
  test("bad or non-invertible configs: one error naming the field", () => {
    const glow = imageMethod("glow");
    // 28 = 4 * 7: two squeezes fit, a third would need 28 divisible by 8
    assert.throws(() => glow.create({ levels: 3 }, 0), /glow: config\.levels is 3; expected at most 2 for 28x28 images: .*2\^levels must divide/);
    assert.throws(() => imageMethod("realnvp").create({ imageShape: [1, 6, 6], levels: 2 }, 0), /config\.levels is 2; expected at most 1 for 6x6/);
    assert.throws(() => glow.create({ hidden: 0 }, 0), /glow: config\.hidden is 0; expected a positive integer/);
    assert.throws(() => glow.create({ depth: 1.5 }, 0), /config\.depth is 1\.5; expected a positive integer/);
    // α = 0.5 maps every pixel to p = 0.5: the logit transform is not invertible
    assert.throws(() => glow.create({ alpha: 0.5 }, 0), /config\.alpha is 0\.5; expected a number in \[0, 0\.5\) .*invertible/);
    assert.throws(() => glow.create({ imageShape: [1, 28] }, 0), /config\.imageShape is \[1,28\]; expected \[C, H, W\]/);
    assert.throws(() => glow.create({ hiden: 8 }, 0), /glow: unknown config field "hiden"; expected some of imageShape, levels, depth, hidden, alpha/);
    assert.deepEqual(glow.create({ depth: 2 }, 0).config, { ...glow.defaults, depth: 2 }, "a partial config takes the rest from the defaults");
  });

  test("the loss is the NLL of the dequantized batch in bits/dim; samples lie in [-1, 1]; temperature 0 is the latent mode", () => {
    const model = imageMethod("realnvp").create(TINY, 1);
    const d = T.loadMnist("train", { limit: 4, normalize: "[-1,1]" });
    const x = T.tensor(d.images, { shape: [4, 1, 28, 28] });
    const loss = model.loss(x, d.labels, new T.RandomGenerator(5), 0).item();
    // the same uniform noise drawn again, the pixels as k / 255, the paper's bits/dim = (nll + D ln 256) / (D ln 2)
    const k01 = T.loadMnist("train", { limit: 4 }).images;
    const nll = T.noGrad(() => T.mean((model.module as T.MultiScaleFlow).nll(T.dequantize(k01, [4, 1, 28, 28], new T.RandomGenerator(5))) as T.Tensor).item());
    assert.ok(Math.abs(loss - (nll + 784 * Math.log(256)) / (784 * Math.LN2)) < 1e-4, `${loss}`);
    assert.ok(loss > 0 && loss < 16, `an untrained flow's bits/dim ${loss} is between 0 and 2 x 8 bits`);

    const s = model.sample(3, new T.RandomGenerator(1));
    assert.deepEqual(s.shape, [3, 1, 28, 28]);
    assert.ok((s.toTypedArray() as Float32Array).every((v) => v >= -1 && v <= 1));
    const mode = (seed: number) => model.sample(2, new T.RandomGenerator(seed), { temperature: 0 }).toTypedArray();
    assert.deepEqual(mode(1), mode(2), "with z = 0 the sample does not depend on the generator");
    assert.throws(() => model.sample(2, new T.RandomGenerator(1), { sampler: "ddim" }), /realnvp: sampler "ddim" is not available/);
    assert.throws(() => model.sample(2, new T.RandomGenerator(1), { labels: Int32Array.of(1, 2) }), /realnvp: labels are not available; the flow is unconditional/);
    assert.throws(() => model.sample(2, new T.RandomGenerator(1), { temperature: -1 }), /temperature must be a finite number >= 0, got -1/);
  });

  test("images of the wrong size or channel count: one error naming both shapes", async () => {
    const model = imageMethod("glow").create(TINY, 0);
    const gen = new T.RandomGenerator(0);
    assert.throws(() => model.loss(T.zeros([2, 1, 32, 32]), new Int32Array(2), gen, 0), /glow: the model reads images \[1, 28, 28\] \(C, H, W\) but the batch is \[2, 1, 32, 32\]/);
    assert.throws(() => model.loss(T.zeros([2, 3, 28, 28]), new Int32Array(2), gen, 0), /glow: the model reads images \[1, 28, 28\] .* but the batch is \[2, 3, 28, 28\]/);
    await assert.rejects(trainImages({ out: join(dir, "rgb"), method: "glow", ...RUN, config: { ...TINY, imageShape: [3, 28, 28] }, steps: 1 }),
      /glow: the model reads images \[3, 28, 28\] \(C, H, W\) but the batch is \[8, 1, 28, 28\]/);
    await assert.rejects(trainImages({ out: join(dir, "big"), method: "glow", ...RUN, config: { ...TINY, imageShape: [1, 32, 32] }, steps: 1 }),
      /reads images \[1, 32, 32\] .* batch is \[8, 1, 28, 28\]/);
  });

  test("a schedule with T <= 0 is refused (schedules.ts, which the diffusion methods build on)", () => {
    for (const t of [0, -5]) assert.throws(() => T.diffusionSchedule("linear", t), new RegExp(`T \\(the number of diffusion steps\\) must be a positive integer, got ${t}`));
  });
});

describe("driver: exact resume", () => {
  test("N steps == K steps, stop, resume to N (and == K steps as a run of K, resumed with --steps N): bit-identical", async () => {
    const N = 6, K = 3;
    const a = await trainImages({ out: join(dir, "a"), method: "glow", ...RUN, steps: N });
    assert.equal(a.losses.length, N);
    // stopped after K (as Ctrl-C does), then resumed to the run's own N
    const b1 = await trainImages({ out: join(dir, "b"), method: "glow", ...RUN, steps: N, shouldStop: () => true, saveEvery: 0 });
    assert.ok(b1.stopped && b1.step === 1, "a stop saves at once");
    const b2 = await trainImages({ out: join(dir, "b"), resume: true, shouldStop: () => false, steps: K });
    const b3 = await trainImages({ out: join(dir, "b"), resume: true, steps: N });
    assert.deepEqual([b2.startStep, b3.startStep, b3.step], [1, K, N]);
    assert.deepEqual([...b1.losses, ...b2.losses, ...b3.losses], a.losses, "the same losses, bit for bit");
    for (const f of ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]) assert.deepEqual(read(join(dir, "b"), f), read(join(dir, "a"), f), f);
    assert.equal(readFileSync(join(dir, "b", "metrics.jsonl"), "utf8"), readFileSync(join(dir, "a", "metrics.jsonl"), "utf8"));
    const steps = readFileSync(join(dir, "a", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
  });

  test("resume refuses another method, changed settings, other data; a new run refuses a taken --out", async () => {
    const run = join(dir, "a");
    await assert.rejects(trainImages({ out: run, resume: true, method: "realnvp" }), /--method realnvp conflicts with the run in .* which trains "glow"/);
    await assert.rejects(trainImages({ out: run, resume: true, lr: 0.01 }), /--lr 0\.01 conflicts with the run's 0\.001: a resumed run keeps its settings/);
    await assert.rejects(trainImages({ out: run, resume: true, limit: 64 }), /--limit 64 conflicts with the run's 32 training images/);
    await assert.rejects(trainImages({ out: run, resume: true, config: TINY }), /--config cannot change the model of the run/);
    await assert.rejects(trainImages({ out: run, resume: true, steps: 2 }), /--steps 2 is below the run's step 6/);
    await assert.rejects(trainImages({ out: run, method: "glow", ...RUN, steps: 1 }), /already holds a run .*pass --resume/);
    await assert.rejects(trainImages({ out: join(dir, "none"), resume: true }), /--resume: .* holds no run to continue/);
    await assert.rejects(trainImages({ out: join(dir, "x"), method: "glow", ...RUN, batch: 64 }), /--batch 64 exceeds the 32 training images/);
    await assert.rejects(trainImages({ out: join(dir, "x"), method: "glow", ...RUN, lr: 0 }), /--lr is 0; expected a finite number > 0/);
    const edited = join(dir, "edited");
    cpSync(run, edited, { recursive: true });
    const stateFile = join(edited, "checkpoint", "trainer_state.json"), state = JSON.parse(readFileSync(stateFile, "utf8"));
    delete state.trainConfig.images;
    writeFileSync(stateFile, JSON.stringify(state));
    await assert.rejects(trainImages({ out: edited, resume: true }), /trainer_state\.json: trainConfig\.images is undefined; expected the number the run was trained with/);
  });
});

describe("sampling from a run", () => {
  test("writes a PNG grid: signature, IHDR size, one byte per pixel", async () => {
    const { method, model } = await loadImageRun(join(dir, "a"));
    assert.equal(method, "glow");
    const file = join(dir, "grid.png");
    writeSampleGrid(model, file, { n: 10, seed: 0, cols: 4, temperature: 0.7 });
    const png = readFileSync(file);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "the PNG signature");
    assert.equal(png.toString("ascii", 12, 16), "IHDR");
    // 3 rows of 4 cells; a cell is 28 pixels scaled x2 plus a 2-pixel border, and one more border on the far side
    const w = 4 * (56 + 2) + 2, h = 3 * (56 + 2) + 2;
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]], [w, h, 8, 0], "width, height, 8-bit grayscale");
    const idat = png.indexOf("IDAT"), len = png.readUInt32BE(idat - 4);
    assert.equal(inflateSync(png.subarray(idat + 4, idat + 4 + len)).length, (w + 1) * h, "a filter byte and w pixels per row");
  });

  test("a run directory missing files, of an unknown method, or with a config that does not validate: one error each", async () => {
    const copy = (name: string) => {
      const d = join(dir, name, "checkpoint");
      mkdirSync(d, { recursive: true });
      for (const f of ["config.json", "model.safetensors"]) writeFileSync(join(d, f), read(join(dir, "a"), f));
      return join(dir, name);
    };
    const missing = copy("missing");
    unlinkSync(join(missing, "checkpoint", "model.safetensors"));
    await assert.rejects(loadImageRun(missing), /missing file model\.safetensors; expected config\.json, model\.safetensors/);
    const other = copy("other");
    writeFileSync(join(other, "checkpoint", "config.json"), JSON.stringify({ method: "vae", config: {} }));
    await assert.rejects(loadImageRun(other), /config\.json \(method "vae"\) does not validate: unknown generative method "vae"; expected one of: .*glow/);
    writeFileSync(join(other, "checkpoint", "config.json"), JSON.stringify({ method: "glow", config: { ...TINY, levels: 5 } }));
    await assert.rejects(loadImageRun(other), /does not validate: glow: config\.levels is 5/);
    writeFileSync(join(other, "checkpoint", "config.json"), JSON.stringify({ method: "glow", config: { ...TINY, hidden: 16 } }));
    await assert.rejects(loadImageRun(other), /model\.safetensors does not fit the glow model of config\.json: loadStateDict: .* has shape/);
    writeFileSync(join(other, "checkpoint", "config.json"), JSON.stringify({ levels: 1 }));
    await assert.rejects(loadImageRun(other), /config\.json is not an image-method run's; expected \{"method"/);
    await assert.rejects(loadImageRun(join(dir, "nowhere")), /holds no run: expected .*checkpoint/);
  });
});
