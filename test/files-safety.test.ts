// Safety of everything read from disk (issue 13): model-only directories, file kinds recognized by
// content, sizes bounded before allocation, bounded reads, tokenizer/model size agreement, non-finite
// checkpoints refused, recovery that never touches what is not ours, Tensor layouts, text inputs.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as T from "../src/index.js";
import { loadCheckpoint, loadModelFiles, saveCheckpoint, type Checkpoint } from "../src/io/checkpoint.js";
import { readSafetensors, writeSafetensors, type SafeTensor } from "../src/io/safetensors.js";
import { brief, parseJsonText } from "../src/io/read.js";
import { readLlama2cCheckpoint } from "../src/io/llama2c.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const roots: string[] = [];
const tmpRoot = async () => { const r = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-files-")); roots.push(r); return r; };
after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));

const CFG = { vocabSize: 5, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 8 };
const VOCAB = ["a", "b", "c", "d", "e"];
const tinyModel = () => new T.TransformerLM(T.gpt2Config(CFG), { generator: new T.RandomGenerator(7) });
const f32 = (t: T.Tensor): SafeTensor => ({ dtype: "F32", shape: [...t.shape], data: t.toTypedArray() as Float32Array });

/** A model directory written file by file (not by saveCheckpoint): config.json, model.safetensors, tokenizer.json. */
async function modelOnlyDir(config: object = T.gpt2Config(CFG), vocab = VOCAB): Promise<{ dir: string; model: T.TransformerLM }> {
  const dir = path.join(await tmpRoot(), "model");
  await fs.mkdir(dir);
  const model = tinyModel();
  await fs.writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  await writeSafetensors(path.join(dir, "model.safetensors"), Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, f32(t)])));
  await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify({ type: "char", vocab }));
  return { dir, model };
}

function checkpoint(step: number, weight = 0.5): Checkpoint {
  return {
    config: { step },
    model: { w: T.tensor(new Float32Array([weight, step])) },
    optimizer: { tensors: { "w.exp_avg": new Float32Array([0.1, 0.2]) }, meta: { step } },
    trainerState: { step, dataRng: { seed: 1, counter: step }, dropoutRng: null, bestValLoss: null, trainConfig: {} },
    extraFiles: {},
  };
}

const siblings = async (dir: string) => (await fs.readdir(path.dirname(dir))).filter((n) => n !== path.basename(dir)).sort();

describe("model directories for inference", () => {
  it("config.json + model.safetensors + tokenizer.json loads, without optimizer or trainer state", async () => {
    const { dir, model } = await modelOnlyDir();
    const { model: loaded, tokenizer } = await T.loadModel(dir);
    assert.ok(tokenizer);
    assert.deepEqual(tokenizer.encode("cab"), [2, 0, 1]);
    const ids = T.tensor(new Int32Array([0, 3, 1]), { shape: [1, 3] });
    assert.deepEqual(loaded.forward(ids).logits.toTypedArray(), model.eval().forward(ids).logits.toTypedArray());
    // Resume still needs (and names) the optimizer and trainer state.
    await assert.rejects(loadCheckpoint(dir), /missing files optimizer\.safetensors, trainer_state\.json/);
  });

  it("a tokenizer whose size differs from the model's vocabulary is an error naming both sizes", async () => {
    const { dir } = await modelOnlyDir(T.gpt2Config(CFG), VOCAB.slice(0, 4));
    await assert.rejects(T.loadModel(dir), /tokenizer .*tokenizer\.json has 4 tokens but model .* has 5 \(vocabSize/);
  });
});

describe("file kinds recognized by content", () => {
  it("each kind is detected, and a wrong kind passed as a model is named", async () => {
    const dir = await tmpRoot();
    const gguf = path.join(dir, "x.gguf");
    // GGUF v3 header: magic, u32 version, u64 tensor count, u64 metadata count.
    await fs.writeFile(gguf, Buffer.concat([Buffer.from("GGUF"), Buffer.from([3, 0, 0, 0]), Buffer.alloc(16, 0), Buffer.alloc(64, 7)]));
    const st = path.join(dir, "w.safetensors");
    await writeSafetensors(st, { x: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
    const hf = path.join(dir, "hf");
    await fs.mkdir(hf);
    await fs.writeFile(path.join(hf, "config.json"), JSON.stringify({ model_type: "llama", architectures: ["LlamaForCausalLM"] }));
    const text = path.join(dir, "notes.txt");
    await fs.writeFile(text, "hello, world\n");
    const tokJson = path.join(dir, "tokenizer.json");
    await fs.writeFile(tokJson, JSON.stringify({ type: "char", vocab: VOCAB }));
    const { dir: modelDir } = await modelOnlyDir();
    const ckDir = path.join(dir, "ck");
    await saveCheckpoint(ckDir, checkpoint(1));

    const kinds: [string, T.FileKind][] = [
      [gguf, "gguf"], [st, "safetensors"], [path.join(root, "data/stories260K.bin"), "llama2c-model"],
      [path.join(root, "data/tok512.bin"), "llama2c-tokenizer"], [hf, "hf-dir"], [text, "text"], [tokJson, "char-tokenizer-json"],
      [modelDir, "tsformer-model-dir"], [ckDir, "tsformer-checkpoint"], ["/dev/zero", "not-regular"], [path.join(dir, "nope"), "missing"],
    ];
    for (const [p, kind] of kinds) assert.equal(T.detectFile(p).kind, kind, p);

    await assert.rejects(T.loadModel(gguf), /model .*x\.gguf is a GGUF file; tsformer loads tsformer model or checkpoint directories .*HF model directories .*llama2\.c \.bin files/);
    await assert.rejects(T.loadModel(path.join(root, "data/tok512.bin")), /tok512\.bin is a llama2\.c tokenizer/);
    // an HF directory is loaded as one: its config.json is read field by field
    await assert.rejects(T.loadModel(hf), /hf[\\/]config\.json: field hidden_size is missing; expected a positive integer/);
    await assert.rejects(T.loadModel(tokJson), /tokenizer\.json is a tsformer character tokenizer/);
    await assert.rejects(T.loadModel(modelDir, gguf), /tokenizer .*x\.gguf is a GGUF file; expected a llama2\.c tokenizer \.bin, an HF tokenizer\.json or a tsformer tokenizer\.json/);
    await assert.rejects(readLlama2cCheckpoint(gguf), /x\.gguf: starts with the magic "GGUF"/);
    await assert.rejects(T.loadModel(path.join(dir, "nope")), /model .*nope is missing \(no such file or directory\); tsformer loads/);
  });
});

describe("sizes bounded before anything is allocated", () => {
  const rssMB = () => process.memoryUsage().rss / 2 ** 20;

  it("huge sizes in config.json fail fast with a clear message, allocating nothing", async () => {
    const base = T.gpt2Config(CFG);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ nLayers: 1e5 }, /config\.json: nLayers: .*<=\s*4096/],
      [{ dFF: 1e7 }, /dFF: .*<=\s*1048576/],
      [{ vocabSize: 1e8 }, /vocabSize: .*<=\s*16777216/],
      [{ maxSeqLen: 1e8 }, /maxSeqLen: .*<=\s*1048576/],
      // Within the bounds and the 4 GiB limit, but not what the weights file holds: refused on its header.
      [{ dModel: 1e4, nHeads: 2 }, /config\.json says vocabSize 5, dModel 10000 but model\.safetensors holds tok_emb\.weight of shape \[5, 8\]/],
      [{ nLayers: 4000 }, /config\.json describes at least \d+ parameters .* but model\.safetensors holds \d+ values/],
      [{ dModel: 16384, nHeads: 2, nLayers: 64 }, /at least .* parameters, 64\.\d GiB as float32 .*TSFORMER_MAX_MODEL_BYTES = 4 GiB/],
    ];
    const dirs = await Promise.all(cases.map(([patch]) => modelOnlyDir({ ...base, ...patch })));
    const wasTracking = T.trackLiveMemory(true);
    T.resetPeakMemory();
    const live0 = T.memoryStats().liveBytes, rss0 = rssMB();
    try {
      for (const [i, [, want]] of cases.entries()) await assert.rejects(T.loadModel(dirs[i].dir), want);
      // Every refusal came before a model was built: no tensor storage beyond the tiny files' own.
      assert.ok(T.memoryStats().peakLiveBytes - live0 < 2 ** 20, `tensor memory peaked ${T.memoryStats().peakLiveBytes - live0} bytes above the start`);
      assert.ok(rssMB() - rss0 < 300, `RSS grew by ${rssMB() - rss0} MB`);
    } finally {
      T.trackLiveMemory(wasTracking);
    }
  });

  it("the limit is the user's: TSFORMER_MAX_MODEL_BYTES lowers (or raises) it, and is named in the error", async () => {
    const { dir } = await modelOnlyDir();
    process.env.TSFORMER_MAX_MODEL_BYTES = "1000";
    try {
      await assert.rejects(T.loadModel(dir), /TSFORMER_MAX_MODEL_BYTES = 1000 bytes/);
      assert.throws(() => T.gpt2Config(CFG), /TSFORMER_MAX_MODEL_BYTES = 1000 bytes/);
      process.env.TSFORMER_MAX_MODEL_BYTES = "lots";
      assert.throws(() => T.gpt2Config(CFG), /TSFORMER_MAX_MODEL_BYTES is "lots"; expected a positive integer/);
    } finally {
      delete process.env.TSFORMER_MAX_MODEL_BYTES;
    }
    await T.loadModel(dir);
  });

  it("a llama2.c header is checked against the file size before the file is read", async () => {
    const file = path.join(await tmpRoot(), "big.bin");
    // dim 4096, hidden 11008, 32 layers, 32 heads: a 7B header on a 1 KB file.
    const header = new Int32Array([4096, 11008, 32, 32, 32, 32000, 2048]);
    await fs.writeFile(file, Buffer.concat([Buffer.from(header.buffer), Buffer.alloc(1000)]));
    await assert.rejects(T.loadModel(file), /big\.bin: file is 1028 bytes \(truncated\); the header .* implies exactly \d+ bytes/);
  });
});

describe("reads bounded: devices, FIFOs and oversized files are refused", () => {
  it("/dev/zero as a model, tokenizer, weights, llama2.c file or text is refused without reading it", async () => {
    const { dir } = await modelOnlyDir();
    await assert.rejects(T.loadModel("/dev/zero"), /model \/dev\/zero is a character device, not a regular file/);
    await assert.rejects(T.loadModel(dir, "/dev/zero"), /tokenizer \/dev\/zero is a character device/);
    await assert.rejects(T.Llama2cTokenizer.load("/dev/zero"), /\/dev\/zero: is a character device; expected a regular file/);
    await assert.rejects(readSafetensors("/dev/zero"), /\/dev\/zero: is a character device; expected a regular file/);
    await assert.rejects(readLlama2cCheckpoint("/dev/zero"), /\/dev\/zero: is a character device/);
    assert.throws(() => T.readTextFile("/dev/zero"), /\/dev\/zero: is a character device; expected a regular file/);
  });

  it("a FIFO is refused at once (opening it does not wait for a writer)", async (t) => {
    const fifo = path.join(await tmpRoot(), "pipe");
    if (spawnSync("mkfifo", [fifo]).status !== 0) return t.skip("no mkfifo on this machine");
    assert.throws(() => T.readTextFile(fifo), /pipe: is a FIFO \(named pipe\); expected a regular file/);
  });

  it("a file larger than the limit is refused before it is read", async () => {
    const file = path.join(await tmpRoot(), "big.txt");
    await fs.writeFile(file, "x".repeat(2000));
    assert.throws(() => T.readTextFile(file, { maxBytes: 1000 }), /big\.txt: is 2 KiB \(2000 bytes\); expected at most 1000 bytes of text/);
  });
});

describe("non-finite checkpoints", () => {
  it("an Inf in optimizer.safetensors is refused on load; a NaN weight is refused before anything is written", async () => {
    const dir = path.join(await tmpRoot(), "ck");
    await saveCheckpoint(dir, checkpoint(1));
    const file = path.join(dir, "optimizer.safetensors");
    const st = await readSafetensors(file);
    (st.tensors["w.exp_avg"].data as Float32Array)[1] = Infinity;
    await writeSafetensors(file, st.tensors, st.metadata);
    await assert.rejects(loadCheckpoint(dir), /optimizer\.safetensors: tensor "w\.exp_avg" holds Infinity at element 1; expected finite values/);

    const fresh = path.join(path.dirname(dir), "fresh");
    await assert.rejects(saveCheckpoint(fresh, checkpoint(2, NaN)), /model\.safetensors: tensor "w" holds NaN at element 0; refusing to write/);
    const inf = checkpoint(2);
    inf.optimizer.tensors["w.exp_avg"][0] = -Infinity;
    await assert.rejects(saveCheckpoint(fresh, inf), /optimizer\.safetensors: tensor "w\.exp_avg" holds -Infinity/);
    assert.deepEqual(await siblings(fresh), ["ck"]);
  });

  it("a trainer_state.json whose trainConfig nests deeply is refused (resume compares it with JSON.stringify)", async () => {
    const dir = path.join(await tmpRoot(), "deep");
    await saveCheckpoint(dir, checkpoint(1));
    const file = path.join(dir, "trainer_state.json");
    const state = JSON.parse(await fs.readFile(file, "utf8"));
    state.trainConfig.evalInterval = "DEEP";
    await fs.writeFile(file, JSON.stringify(state).replace('"DEEP"', "[".repeat(100000) + "]".repeat(100000)));
    await assert.rejects(loadCheckpoint(dir), /trainConfig.*nests deeper than 4 levels/);
  });
});

describe("checkpoint recovery never depends on process ids", () => {
  it("user directories named X.tmp-N / X.old-N survive loads and saves", async () => {
    const { dir } = await modelOnlyDir();
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number; // a pid that is not running
    for (const d of [`${dir}.tmp-${dead}`, `${dir}.old-${dead}`, `${dir}.tmp-123`]) {
      await fs.mkdir(d);
      await fs.writeFile(path.join(d, "notes.txt"), "mine");
    }
    await T.loadModel(dir);
    await loadModelFiles(dir);
    const ck = path.join(path.dirname(dir), "ck");
    await fs.mkdir(`${ck}.tmp-${dead}`);
    await fs.writeFile(path.join(`${ck}.tmp-${dead}`, "notes.txt"), "mine too");
    await saveCheckpoint(ck, checkpoint(1));
    await saveCheckpoint(ck, checkpoint(2));
    assert.deepEqual(await siblings(dir), ["ck", `ck.tmp-${dead}`, `model.old-${dead}`, `model.tmp-${dead}`, "model.tmp-123"].sort());
    assert.equal(await fs.readFile(path.join(`${ck}.tmp-${dead}`, "notes.txt"), "utf8"), "mine too");
  });

  it("a save killed between its two renames: the load restores the previous checkpoint, the next save cleans up", async () => {
    const dir = path.join(await tmpRoot(), "ck");
    const url = (p: string) => JSON.stringify(pathToFileURL(path.join(root, p)).href);
    const child = path.join(path.dirname(dir), "child.mts");
    await fs.writeFile(child, `
      import { promises as fs } from "node:fs";
      const { saveCheckpoint } = await import(${url("src/io/checkpoint.ts")});
      const T = await import(${url("src/index.ts")});
      const ck = (step) => ({ config: { step }, model: { w: T.tensor(new Float32Array([step])) },
        optimizer: { tensors: {}, meta: {} }, extraFiles: {},
        trainerState: { step, dataRng: { seed: 1, counter: step }, dropoutRng: null, bestValLoss: null, trainConfig: {} } });
      const dir = ${JSON.stringify(dir)};
      await saveCheckpoint(dir, ck(1));
      const rename = fs.rename;
      // kill -9 right when the new checkpoint would be renamed in (the old one is already aside)
      fs.rename = async (from, to) => { if (to === dir && from.includes(".tmp-")) process.kill(process.pid, "SIGKILL"); return rename(from, to); };
      await saveCheckpoint(dir, ck(2));
    `);
    const r = spawnSync(process.execPath, ["--import", "tsx", child], { cwd: root, encoding: "utf8" });
    assert.equal(r.signal, "SIGKILL", r.stderr);
    assert.equal(await fs.stat(dir).then(() => true, () => false), false);
    const left = await siblings(dir);
    assert.ok(left.some((n) => n.startsWith("ck.old-")) && left.some((n) => n.startsWith("ck.tmp-")), left.join(", "));

    // A read-only load renames the previous checkpoint back (only because ck is missing) and deletes nothing.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    const loaded = await loadCheckpoint(dir);
    await new Promise((res) => setImmediate(res));
    process.off("warning", onWarning);
    assert.deepEqual(loaded.config, { step: 1 });
    assert.deepEqual(await fs.readdir(dir).then((n) => n.sort()), ["config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"]);
    assert.match(warnings.join("\n"), /restored the previous checkpoint from .*ck\.old-/);
    assert.deepEqual((await siblings(dir)).filter((n) => n.startsWith("ck.")).map((n) => n.slice(0, 7)), ["ck.tmp-"]);

    await saveCheckpoint(dir, checkpoint(3));
    assert.deepEqual((await siblings(dir)).filter((n) => n.startsWith("ck.")), []);
    assert.deepEqual((await loadCheckpoint(dir)).config, { step: 3 });
  });
});

describe("Tensor layouts", () => {
  it("the constructor refuses views that would read past the storage, negative strides and non-integer shapes", () => {
    const data = new Float32Array(6);
    assert.throws(() => new T.Tensor(data, [1.5, 2]), /shape \[1\.5, 2\].*sizes must be non-negative integers/);
    assert.throws(() => new T.Tensor(data, [-1, 2]), /sizes must be non-negative integers/);
    assert.throws(() => new T.Tensor(data, [2, 3], { strides: [4, 1] }), /reads up to element 6 but the storage holds 6/);
    assert.throws(() => new T.Tensor(data, [2, 3], { strides: [3, -1], offset: 2 }), /strides must be non-negative integers/);
    assert.throws(() => new T.Tensor(data, [2, 3], { offset: 1 }), /reads up to element 6/);
    assert.throws(() => new T.Tensor(data, [2, 3], { offset: -1 }), /the offset must be a non-negative integer/);
    assert.throws(() => new T.Tensor(data, [2, 3], { strides: [1] }), /1 strides for 2 dims/);
    assert.throws(() => new T.Tensor(data, [7]), /reads up to element 6/);
    // Legal: a broadcast (stride 0), a transposed view, an offset view, an empty tensor, a scalar.
    assert.deepEqual(new T.Tensor(data, [4, 3], { strides: [0, 1], offset: 3 }).shape, [4, 3]);
    assert.deepEqual(new T.Tensor(data, [3, 2], { strides: [1, 3] }).toArray(), [[0, 0], [0, 0], [0, 0]]);
    assert.equal(new T.Tensor(data, [0, 5], { offset: 6 }).numel, 0);
    assert.equal(new T.Tensor(data, [], { offset: 5 }).item(), 0);
  });
});

describe("text inputs", () => {
  it("UTF-8 text is read; binary (NUL) and invalid UTF-8 are refused naming the file and the offset", async () => {
    const dir = await tmpRoot();
    const ok = path.join(dir, "ok.txt"), nul = path.join(dir, "nul.bin"), latin1 = path.join(dir, "latin1.txt");
    await fs.writeFile(ok, "\uFEFFhé 世界 🙂\n");
    await fs.writeFile(nul, Buffer.from([0x68, 0x69, 0x00, 0x01]));
    await fs.writeFile(latin1, Buffer.from("caf\xe9 au lait", "latin1"));
    assert.equal(T.readTextFile(ok), "\uFEFFhé 世界 🙂\n");
    assert.throws(() => T.readTextFile(nul, { label: "--data nul.bin" }), /^FileReadError: --data nul\.bin: has a NUL byte at offset 2: a binary file; expected UTF-8 text$/m);
    assert.throws(() => T.readTextFile(latin1), /latin1\.txt: is not valid UTF-8 \(at or after byte 3\); expected UTF-8 text/);
    assert.throws(() => T.readTextFile(path.join(dir, "none.txt")), /none\.txt: cannot open \(ENOENT\)/);
  });
});

describe("JSON files", () => {
  it("a syntax error is reported on one line (V8 quotes the text, newlines included); a byte-order mark is accepted", () => {
    assert.throws(() => parseJsonText('{\n "cab": [\n  $ "\\n",\n  "x"]}'), (e: Error) => e instanceof SyntaxError && !/[\r\n]/.test(e.message) && /Unexpected token '\$'/.test(e.message));
    assert.deepEqual(parseJsonText('\ufeff{"a": 1}'), { a: 1 });
  });

  it("error messages show NaN, Infinity and -Infinity as written, not as JSON's null", () => {
    assert.deepEqual([brief(Infinity), brief(-Infinity), brief(NaN)], ["Infinity", "-Infinity", "NaN"]);
    assert.equal(brief(parseJsonText('{"a": [1, 1e999, -1e999], "b": null}')), '{"a":[1,Infinity,-Infinity],"b":null}');
    assert.throws(() => T.CharTokenizer.fromJSON({ type: "char", vocab: ["a", NaN] }), /"vocab"\[1\] is NaN; expected a single character/);
  });

  it("a value nested too deeply to print is named in the error, not a stack overflow", () => {
    const deep = parseJsonText("[".repeat(10000) + "]".repeat(10000));
    assert.throws(() => T.CharTokenizer.fromJSON({ type: "char", vocab: ["a", deep] }), /"vocab"\[1\] is a deeply nested array; expected a single character/);
  });
});
