import { test } from "node:test";
import assert from "node:assert/strict";
import { randomFillSync } from "node:crypto";
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  SafetensorsError, decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors,
  type SafeDType, type SafeData, type SafeTensor,
} from "../src/io/safetensors.js";

const bytesOf = (d: SafeData) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** Random tensor; floats get special bit patterns (NaN with payloads, ±Inf, -0) at the front. */
function randomTensor(dtype: SafeDType, shape: number[]): SafeTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const make: Record<SafeDType, (n: number) => SafeData> = {
    F64: (k) => new Float64Array(k), F32: (k) => new Float32Array(k), BF16: (k) => new Uint16Array(k),
    F16: (k) => new Uint16Array(k), I64: (k) => new BigInt64Array(k), I32: (k) => new Int32Array(k),
    I16: (k) => new Int16Array(k), I8: (k) => new Int8Array(k), U16: (k) => new Uint16Array(k),
    U8: (k) => new Uint8Array(k), BOOL: (k) => new Uint8Array(k),
  };
  const data = make[dtype](n);
  randomFillSync(bytesOf(data));
  const head = <T>(view: { set(v: ArrayLike<T>): void; length: number }, vals: T[]) => view.set(vals.slice(0, view.length));
  if (dtype === "F32") {
    head(new Uint32Array(data.buffer), [0x7fc00000, 0x7f800001, 0xffc00123, 0x7f800000, 0xff800000, 0x80000000]);
  } else if (dtype === "F64") {
    head(new BigUint64Array(data.buffer), [0x7ff8000000000000n, 0x7ff0000000000001n, 0xfff8000000000abcn,
      0x7ff0000000000000n, 0xfff0000000000000n, 0x8000000000000000n]);
  } else if (dtype === "F16") {
    head(data as Uint16Array, [0x7e00, 0x7c01, 0xfe12, 0x7c00, 0xfc00, 0x8000]);
  } else if (dtype === "BF16") {
    head(data as Uint16Array, [0x7fc0, 0x7f81, 0xffc1, 0x7f80, 0xff80, 0x8000]);
  } else if (dtype === "BOOL") {
    (data as Uint8Array).forEach((b, i, a) => (a[i] = b & 1));
  }
  return { dtype, shape, data };
}

const ALL: SafeDType[] = ["F64", "F32", "BF16", "F16", "I64", "I32", "I16", "I8", "U16", "U8", "BOOL"];

function assertSameTensors(got: Record<string, SafeTensor>, want: Record<string, SafeTensor>) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assert.equal(g.dtype, w.dtype, name);
    assert.deepEqual(g.shape, w.shape, name);
    assert.equal(g.data.constructor, w.data.constructor, name);
    assert.equal(g.data.byteOffset % g.data.BYTES_PER_ELEMENT, 0, `${name} aligned`);
    assert.ok(Buffer.from(bytesOf(g.data)).equals(Buffer.from(bytesOf(w.data))), `${name} bit-identical`);
  }
}

/** Build a file by hand following the spec: u64 LE length, header text, data bytes. */
function build(header: unknown, data: number[] | Uint8Array = [], headerLength?: bigint): Uint8Array {
  const text = header instanceof Uint8Array ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  let len = headerLength ?? BigInt(text.length);
  for (let i = 0; i < 8; i++, len >>= 8n) out[i] = Number(len & 0xffn);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function assertFails(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(() => decodeSafetensors(bytes, "model.safetensors"), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.match(e.message, /^model\.safetensors: /);
    assert.match(e.message, pattern);
    return true;
  });
}

test("round trip of every dtype is bit-identical (incl. NaN/Inf/-0, scalar, empty)", () => {
  const tensors: Record<string, SafeTensor> = {};
  for (const dt of ALL) {
    tensors[`w.${dt}`] = randomTensor(dt, [3, 5]);
    tensors[`s.${dt}`] = randomTensor(dt, []);
  }
  tensors["empty"] = randomTensor("F32", [0, 4]);
  const bytes = encodeSafetensors(tensors);
  const { tensors: got, metadata } = decodeSafetensors(bytes);
  assertSameTensors(got, tensors);
  assert.deepEqual(metadata, {});
});

test("header: padded with spaces to 8 bytes, sorted names, contiguous offsets", () => {
  const tensors = { b: randomTensor("U8", [3]), a: randomTensor("F64", [2]), c: randomTensor("I16", [1]) };
  const bytes = encodeSafetensors(tensors, { k: "v" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/);
  const header = JSON.parse(text);
  assert.deepEqual(Object.keys(header), ["__metadata__", "a", "b", "c"]);
  assert.deepEqual(header.a.data_offsets, [0, 16]);
  assert.deepEqual(header.b.data_offsets, [16, 19]);
  assert.deepEqual(header.c.data_offsets, [19, 21]);
  assert.equal(bytes.length, 8 + n + 21);
});

test("metadata round trip", () => {
  const metadata = { format: "pt", note: "ünïcødé ✓ \"quoted\"\n", empty: "" };
  const out = decodeSafetensors(encodeSafetensors({ x: randomTensor("BF16", [4]) }, metadata));
  assert.deepEqual(out.metadata, metadata);
});

test("hand-built file decodes to the expected values", () => {
  // Entries in non-name order, the F32 at an odd offset, header not padded, metadata last.
  const header =
    '{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},' +
    '"c":{"dtype":"I64","shape":[1,1],"data_offsets":[9,17]},' +
    '"d":{"dtype":"BF16","shape":[2],"data_offsets":[17,21]},' +
    '"e":{"dtype":"BOOL","shape":[2],"data_offsets":[21,23]},' +
    '"__metadata__":{"format":"pt"}}';
  const data = [
    0xab, // b = 171
    0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, // a = [1.5, -2]
    0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // c = [[-3]]
    0x80, 0x3f, 0x49, 0x40, // d = [1.0, 3.140625] as bf16 bits
    0x01, 0x00, // e = [true, false]
  ];
  const hlen = header.length;
  const bytes = new Uint8Array([hlen & 0xff, hlen >> 8, 0, 0, 0, 0, 0, 0, ...Buffer.from(header, "utf8"), ...data]);
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(tensors.b, { dtype: "U8", shape: [1], data: new Uint8Array([171]) });
  assert.deepEqual(tensors.a, { dtype: "F32", shape: [2], data: new Float32Array([1.5, -2]) });
  assert.deepEqual(tensors.c, { dtype: "I64", shape: [1, 1], data: new BigInt64Array([-3n]) });
  assert.deepEqual(tensors.d, { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0x4049]) });
  assert.deepEqual(tensors.e, { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) });
});

test("write then read: file bit-identical, atomic overwrite, no temp files left", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsformer-st-"));
  try {
    const file = join(dir, "model.safetensors");
    const tensors = { w: randomTensor("F32", [8, 3]), ids: randomTensor("I64", [5]) };
    await writeSafetensors(file, tensors, { step: "1" });
    assert.ok((await readFile(file)).equals(Buffer.from(encodeSafetensors(tensors, { step: "1" }))));
    const back = await readSafetensors(file);
    assertSameTensors(back.tensors, tensors);
    assert.deepEqual(back.metadata, { step: "1" });

    // Overwrite replaces the file; a failing write (invalid tensor) leaves it untouched.
    const tensors2 = { w: randomTensor("F16", [2]) };
    await writeSafetensors(file, tensors2);
    const before = await readFile(file);
    assertSameTensors((await readSafetensors(file)).tensors, tensors2);
    const invalid = { w: { dtype: "F32", shape: [3], data: new Float32Array(2) } as SafeTensor };
    await assert.rejects(writeSafetensors(file, invalid), SafetensorsError);
    assert.ok((await readFile(file)).equals(before));

    // Failure at rename (target is a directory): the temp file is cleaned up.
    const blocked = join(dir, "blocked.safetensors");
    await mkdir(blocked);
    await writeFile(join(blocked, "keep"), "x");
    await assert.rejects(writeSafetensors(blocked, tensors2), (e: unknown) =>
      e instanceof SafetensorsError && /blocked\.safetensors: write failed/.test(e.message));
    assert.deepEqual((await readdir(dir)).sort(), ["blocked.safetensors", "model.safetensors"]);

    await assert.rejects(readSafetensors(join(dir, "missing.safetensors")), /missing\.safetensors: cannot read file \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const F32x2 = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

test("error: truncated file (< 8 bytes)", () => {
  assertFails(new Uint8Array([1, 0, 0, 0, 0]), /truncated file: 5 bytes; expected at least 8/);
});

test("error: garbled header length (larger than the file)", () => {
  assertFails(build({ a: F32x2 }, new Uint8Array(8), 1000n), /header length 1000 is larger than the file/);
});

test("error: oversized header length (over the 100 MB limit)", () => {
  assertFails(build({}, [], 1n << 40n), /header length 1099511627776 exceeds the 100000000-byte limit/);
});

test("error: invalid JSON header", () => {
  assertFails(build('{"a": {"dtype": "F32",'), /header is not valid JSON/);
  assertFails(build("[1, 2]"), /header is \[1,2\]; expected a JSON object/);
  assertFails(build(new Uint8Array([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/);
});

test("error: unknown dtype names it and lists supported ones", () => {
  assertFails(build({ a: { ...F32x2, dtype: "F8_E4M3" } }, new Uint8Array(8)),
    /tensor "a": unknown dtype "F8_E4M3"; supported dtypes: F64, F32, BF16, F16, I64, I32, I16, I8, U16, U8, BOOL/);
});

test("error: data_offsets out of range of the data section", () => {
  assertFails(build({ a: F32x2 }, new Uint8Array(6)), /tensor "a": data_offsets \[0, 8\] out of range of the data section \(6 bytes\)/);
});

test("error: overlapping tensors", () => {
  const header = { a: F32x2, b: { ...F32x2, data_offsets: [4, 12] } };
  assertFails(build(header, new Uint8Array(12)), /overlapping tensors: "b" starts at byte 4 but "a" ends at byte 8/);
});

test("error: shape/size mismatch", () => {
  assertFails(build({ a: { ...F32x2, shape: [3] } }, new Uint8Array(8)),
    /tensor "a": shape\/size mismatch: shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8 bytes/);
});

test("other decode errors: entry fields, gaps, trailing bytes, metadata, BOOL bytes", () => {
  const d8 = new Uint8Array(8);
  assertFails(build({ a: { shape: [2], data_offsets: [0, 8] } }, d8), /tensor "a": "dtype" is missing; expected a string/);
  assertFails(build({ a: { ...F32x2, shape: [-2] } }, d8), /"shape" is \[-2\]; expected an array of non-negative integers/);
  assertFails(build({ a: { ...F32x2, shape: [1.5] } }, d8), /"shape" is \[1.5\]/);
  assertFails(build({ a: { ...F32x2, data_offsets: [0] } }, d8), /"data_offsets" is \[0\]; expected \[begin, end\]/);
  assertFails(build({ a: { ...F32x2, data_offsets: [8, 0] } }, d8), /begin > end/);
  assertFails(build({ a: 3 }, d8), /tensor "a": entry is 3; expected an object/);
  assertFails(build({ a: { ...F32x2, data_offsets: [4, 12] } }, new Uint8Array(12)), /gap in the data section: bytes \[0, 4\)/);
  assertFails(build({ a: F32x2 }, new Uint8Array(10)), /data section has 10 bytes but the tensors cover only 8/);
  assertFails(build({ __metadata__: { a: 1 } }), /"__metadata__" key "a" is 1; expected a string value/);
  assertFails(build({ __metadata__: ["x"] }), /"__metadata__" is \["x"\]; expected an object/);
  assertFails(build({ m: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } }, [1, 2]), /BOOL element 1 is byte 2/);
});

test("encode validates shape vs data, dtype vs array type, names", () => {
  const enc = (t: unknown, m?: unknown) => () =>
    encodeSafetensors(t as Record<string, SafeTensor>, m as Record<string, string>);
  const f32 = (n: number) => new Float32Array(n).fill(0.5);
  assert.throws(enc({ a: { dtype: "F32", shape: [2, 2], data: f32(3) } }), /shape \[2, 2\] has 4 elements but data has 3/);
  assert.throws(enc({ a: { dtype: "F64", shape: [2], data: f32(2) } }), /dtype F64 needs data as Float64Array, got "Float32Array"/);
  assert.throws(enc({ a: { dtype: "F8", shape: [2], data: f32(2) } }), /unknown dtype "F8"/);
  assert.throws(enc({ a: { dtype: "F32", shape: [-1], data: f32(2) } }), /non-negative integers/);
  assert.throws(enc({ "": { dtype: "F32", shape: [1], data: f32(1) } }), /tensor name is empty/);
  assert.throws(enc({ __metadata__: { dtype: "F32", shape: [1], data: f32(1) } }), /reserved/);
  assert.throws(enc({ b: { dtype: "BOOL", shape: [1], data: new Uint8Array([7]) } }), /only 0 and 1/);
  assert.throws(enc({}, { n: 3 }), (e: unknown) => e instanceof SafetensorsError && /expected a string value/.test(e.message));
});

test("readSafetensors checks the header before reading the data: the header's promise, the caller's check, maxBytes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "st-bounded-"));
  try {
    const file = join(dir, "m.safetensors");
    const bytes = encodeSafetensors({ a: randomTensor("F32", [3, 4]), b: randomTensor("I32", [5]) });
    await writeFile(file, bytes);
    const seen: unknown[] = [];
    const got = await readSafetensors(file, { checkHeader: (h) => seen.push(h) });
    assert.deepEqual(seen, [{ tensors: { a: { dtype: "F32", shape: [3, 4] }, b: { dtype: "I32", shape: [5] } }, metadata: {}, headerBytes: bytes.length - 68, dataBytes: 68 }]);
    assert.deepEqual(got.tensors.b.shape, [5]);
    await assert.rejects(readSafetensors(file, { checkHeader: () => { throw new Error("refused by the caller"); } }), /refused by the caller/);
    await assert.rejects(readSafetensors(file, { maxBytes: 100, what: "the test's 100 bytes" }), /m\.safetensors: is \d+ bytes \(\d+ bytes\); expected at most the test's 100 bytes/);
    // Bytes beyond what the header promises: refused from the header and the file size alone.
    await writeFile(file, Buffer.concat([bytes, Buffer.alloc(4)]));
    await assert.rejects(readSafetensors(file), /data section has 72 bytes but the tensors cover only 68/);
    await assert.rejects(readSafetensors("/dev/zero"), /\/dev\/zero: is a character device; expected a regular file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
