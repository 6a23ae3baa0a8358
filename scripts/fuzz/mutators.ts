// Mutators for the fuzz harness: generic byte-level ones (flips, truncation, garbage, non-UTF-8,
// endless input) and format-aware ones (JSON values, the safetensors header, the llama2.c model and
// tokenizer headers). Every mutator is a pure function of the seed bytes and a seeded PRNG, so a mutant
// is reproduced from (--seed, index) alone.

/** A mutant: new bytes, or a symlink to an endless device (/dev/zero reads forever). */
export type Mutant = { desc: string; bytes: Uint8Array } | { desc: string; link: string };

/** mulberry32: small, fast, seedable; plenty for choosing mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  /** An offset biased toward the start, where headers live. */
  offset(len: number): number { return this.next() < 0.5 ? this.int(Math.min(len, 256)) : this.int(len); }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// Invalid UTF-8: a lone continuation byte, an overlong "/", a UTF-16 surrogate, bytes never valid, a NUL.
const NON_UTF8 = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff, 0xfe], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x00]];

/** GGUF v3 header bytes ("GGUF", version, tensor count, kv count): the wrong-kind file users pass as a model. */
const GGUF = concat(enc.encode("GGUF"), new Uint8Array(new Uint32Array([3]).buffer), new Uint8Array(new BigUint64Array([2n, 1n]).buffer), new Uint8Array(64).fill(7));

export type ByteMutator = (b: Uint8Array, r: Rng) => Mutant;

export const byteMutators: Record<string, ByteMutator> = {
  bitflip(b, r) {
    const out = b.slice(), k = 1 + r.int(8), at: number[] = [];
    for (let i = 0; i < k && out.length; i++) { const o = r.offset(out.length); out[o]! ^= 1 << r.int(8); at.push(o); }
    return { desc: `flip ${k} bit(s) at ${at.join(",")}`, bytes: out };
  },
  byteset(b, r) {
    const out = b.slice(), v = r.pick([0x00, 0xff, 0x7f, 0x80, 0x01]), o = r.offset(Math.max(out.length, 1)), n = 1 + r.int(8);
    out.fill(v, o, o + n);
    return { desc: `set ${n} byte(s) at ${o} to 0x${v.toString(16)}`, bytes: out };
  },
  truncate(b, r) {
    const n = r.next() < 0.3 ? r.int(Math.min(b.length, 64)) : r.int(b.length);
    return { desc: `truncate to ${n} of ${b.length} bytes`, bytes: b.slice(0, n) };
  },
  extend(b, r) {
    const n = 1 + r.int(r.next() < 0.5 ? 16 : 65536), g = new Uint8Array(n);
    for (let i = 0; i < n; i++) g[i] = r.int(256);
    return { desc: `append ${n} garbage bytes`, bytes: concat(b, g) };
  },
  splice(b, r) {
    const a = r.int(b.length + 1), len = 1 + r.int(512);
    return r.next() < 0.5
      ? { desc: `delete ${len} bytes at ${a}`, bytes: concat(b.subarray(0, a), b.subarray(a + len)) }
      : { desc: `duplicate ${len} bytes at ${a}`, bytes: concat(b.subarray(0, a + len), b.subarray(a, a + len), b.subarray(a + len)) };
  },
  nonUtf8(b, r) {
    const seq = r.pick(NON_UTF8), o = r.offset(b.length + 1);
    return { desc: `insert non-UTF-8 [${seq.map((x) => x.toString(16)).join(" ")}] at ${o}`, bytes: concat(b.subarray(0, o), Uint8Array.from(seq), b.subarray(o)) };
  },
  empty: () => ({ desc: "empty file", bytes: new Uint8Array(0) }),
  endless: (_b, r) => { const link = r.pick(["/dev/zero", "/dev/urandom"]); return { desc: `symlink to ${link} (endless input)`, link }; },
  gguf: () => ({ desc: "a GGUF file in its place", bytes: GGUF.slice() }),
};

// ---------------------------------------------------------------- JSON

// Values JSON.stringify cannot write go in as text: 1e999 parses to Infinity, NaN is not JSON at all.
const RAW = ["1e999", "-1e999", "NaN", "Infinity", "1e-400", "00", "0x10"];
const VALUES: unknown[] = [1e9, 2 ** 52, 2 ** 53 + 2, 1e308, -1, -(2 ** 31), 0, -0, 0.5, 1.5, 1e5, 1e7, 1e8,
  "NaN", "Infinity", "1e9", "", "x", null, true, false, [], {}, [1, 2], { a: 1 }, "\u0000", "\ud800"];
const RAW_MARK = "\u0001raw:";

type Path = (string | number)[];

function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (out.length > 5000) return out;
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === "object") for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], [...at, k], out);
  return out;
}

function getAt(root: unknown, p: Path): unknown {
  return p.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], root);
}

/** Replaces the value at path p (the root when p is empty); returns the new root. */
function setAt(root: unknown, p: Path, value: unknown): unknown {
  if (p.length === 0) return value;
  const parent = getAt(root, p.slice(0, -1)) as Record<string | number, unknown>;
  parent[p[p.length - 1]!] = value;
  return root;
}

function deleteAt(root: unknown, p: Path): unknown {
  if (p.length === 0) return undefined;
  const parent = getAt(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent)) parent.splice(k as number, 1);
  else delete (parent as Record<string, unknown>)[k as string];
  return root;
}

/** One structural change to a parsed JSON value; returns the new text. */
export function mutateJsonValue(value: unknown, r: Rng): { desc: string; text: string } {
  const root = structuredClone(value);
  const all = paths(root);
  const p = r.pick(all);
  const where = p.length ? p.join(".") : "(root)";
  const cur = getAt(root, p);
  const op = r.pick(["set", "set", "set", "raw", "delete", "extra", "grow", "nest", "wrap", "stringify"] as const);
  let desc: string, out: unknown = root;
  switch (op) {
    case "set": { const v = r.pick(VALUES); out = setAt(root, p, v); desc = `${where} = ${JSON.stringify(v)}`; break; }
    case "raw": { const v = r.pick(RAW); out = setAt(root, p, RAW_MARK + v); desc = `${where} = ${v} (raw text)`; break; }
    case "delete": out = deleteAt(root, p); desc = `delete ${where}`; break;
    case "extra": {
      const obj = cur !== null && typeof cur === "object" && !Array.isArray(cur) ? cur as Record<string, unknown> : null;
      if (obj) obj[r.pick(["extra_field", "__proto__x", "Step", "vocab_size"])] = r.pick(VALUES);
      else out = setAt(root, p, { value: cur });
      desc = obj ? `extra field in ${where}` : `${where} wrapped in an object`;
      break;
    }
    case "grow": {
      const n = r.pick([1000, 100_000, 1_000_000]);
      const v = Array.isArray(cur) && cur.length ? Array.from({ length: n }, (_, i) => cur[i % cur.length]) : typeof cur === "string" ? cur.padEnd(n, "ab") : new Array(n).fill(1);
      out = setAt(root, p, v);
      desc = `${where} grown to ${n} elements/characters`;
      break;
    }
    case "nest": { const d = r.pick([100, 10_000, 200_000]); out = setAt(root, p, RAW_MARK + "[".repeat(d) + "]".repeat(d)); desc = `${where} = array nested ${d} deep`; break; }
    case "wrap": out = setAt(root, p, [cur]); desc = `${where} wrapped in an array`; break;
    case "stringify": out = setAt(root, p, JSON.stringify(cur) ?? "undefined"); desc = `${where} as a string`; break;
  }
  const text = out === undefined ? "" : JSON.stringify(out, null, 1).replace(/"\\u0001raw:([^"]*)"/g, "$1");
  return { desc: `json: ${desc}`, text };
}

/** JSON-aware mutants of a JSON file; falls back to byte mutators a third of the time. */
export function mutateJson(bytes: Uint8Array, r: Rng): Mutant {
  if (r.next() < 0.33) return mutateBytes(bytes, r);
  const textOps = r.int(6);
  const text = dec.decode(bytes);
  if (textOps === 0) return { desc: "json: UTF-8 BOM prefix", bytes: concat(Uint8Array.of(0xef, 0xbb, 0xbf), bytes) };
  if (textOps === 1) {
    const m = text.match(/"([^"\\]+)":/);
    return { desc: "json: duplicated first key", bytes: enc.encode(m ? text.replace("{", `{"${m[1]}": 1e999, `) : `${text}${text}`) };
  }
  const { desc, text: t } = mutateJsonValue(JSON.parse(text), r);
  return { desc, bytes: enc.encode(t) };
}

export function mutateBytes(bytes: Uint8Array, r: Rng): Mutant {
  const name = r.pick(Object.keys(byteMutators));
  return byteMutators[name]!(bytes, r);
}

// ---------------------------------------------------------------- safetensors

const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "Q4_0", "f32", ""];
const SHAPES: unknown[] = [[2 ** 31, 2 ** 31], [1e9], [-1], [0], [1.5, 2], [], [1, 1, 1, 1, 1, 1, 1, 1, 1], ["4"], [2 ** 53], null];

/** Mutates the header (its length field, a tensor's dtype / shape / offsets, any JSON value) or injects non-finite floats. */
export function mutateSafetensors(bytes: Uint8Array, r: Rng): Mutant {
  if (r.next() < 0.25 || bytes.length < 8) return mutateBytes(bytes, r);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(dec.decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
  const data = bytes.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const t = header[r.pick(names)]!;
  const rebuild = (h: unknown, desc: string, raw?: string) => {
    const json = enc.encode(raw ?? JSON.stringify(h));
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    return { desc: `safetensors: ${desc}`, bytes: concat(len, json, data) };
  };
  switch (r.int(6)) {
    case 0: {
      const v = r.pick([0n, 1n, BigInt(n - 1), BigInt(n + 1), 2n ** 32n, 2n ** 53n, 2n ** 64n - 1n, BigInt(bytes.length)]);
      const out = bytes.slice();
      new DataView(out.buffer).setBigUint64(0, v, true);
      return { desc: `safetensors: header length ${n} -> ${v}`, bytes: out };
    }
    case 1: t.dtype = r.pick(DTYPES); return rebuild(header, `a tensor's dtype -> ${JSON.stringify(t.dtype)}`);
    case 2: t.shape = r.pick(SHAPES) as number[]; return rebuild(header, `a tensor's shape -> ${JSON.stringify(t.shape)}`);
    case 3: {
      const [a, b] = t.data_offsets as [number, number];
      const v = r.pick([[b, a], [0, 0], [a, 2 ** 53], [-4, b], [a, data.length + 4], [0, b], [a + 1, b + 1], [a, b, 0], [a]]);
      t.data_offsets = v;
      return rebuild(header, `a tensor's data_offsets [${a},${b}] -> ${JSON.stringify(v)}`);
    }
    case 4: {
      // Non-finite or extreme floats in the data: a loader should refuse them (or the run must stay finite).
      const out = bytes.slice(), fv = new DataView(out.buffer), at = 8 + n + 4 * r.int(Math.max(1, data.length >> 2));
      const v = r.pick([NaN, Infinity, -Infinity, 3.4e38, 1e-45]);
      if (at + 4 <= out.length) fv.setFloat32(at, v, true);
      return { desc: `safetensors: float at byte ${at} = ${v}`, bytes: out };
    }
    default: { const m = mutateJsonValue(header, r); return rebuild(null, `header ${m.desc}`, m.text); }
  }
}

// ---------------------------------------------------------------- llama2.c

const LLAMA_FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
const INT_VALUES = [0, -1, 1, 2, 3, 2 ** 31 - 1, -(2 ** 31), 1e5, 1e6, 65536, 0x616b3432];

/** llama2.c model: header int32 fields set to huge / negative / zero / off-by-one, or non-finite weights. */
export function mutateLlama2cModel(bytes: Uint8Array, r: Rng): Mutant {
  if (r.next() < 0.25) return mutateBytes(bytes, r);
  const out = bytes.slice(), v = new DataView(out.buffer);
  if (r.next() < 0.15) {
    const at = 28 + 4 * r.int((out.length - 28) >> 2), f = r.pick([NaN, Infinity, -Infinity, 3.4e38]);
    v.setFloat32(at, f, true);
    return { desc: `llama2c: weight at byte ${at} = ${f}`, bytes: out };
  }
  const descs: string[] = [];
  for (let k = 1 + (r.next() < 0.3 ? r.int(3) : 0); k > 0; k--) {
    const i = r.int(7), old = v.getInt32(4 * i, true);
    const nv = r.next() < 0.3 ? r.pick([old * 2, old + 1, old - 1, -old]) : r.pick(INT_VALUES);
    v.setInt32(4 * i, nv | 0, true);
    descs.push(`${LLAMA_FIELDS[i]} ${old} -> ${nv | 0}`);
  }
  return { desc: `llama2c header: ${descs.join(", ")}`, bytes: out };
}

/** llama2.c tokenizer: max_token_length, a record's length or score, or its piece bytes. */
export function mutateLlama2cTokenizer(bytes: Uint8Array, r: Rng): Mutant {
  if (r.next() < 0.25) return mutateBytes(bytes, r);
  const out = bytes.slice(), v = new DataView(out.buffer);
  const records: number[] = [];
  for (let o = 4; o + 8 <= out.length; o += 8 + v.getInt32(o + 4, true)) records.push(o);
  const rec = r.pick(records);
  switch (r.int(4)) {
    case 0: { const nv = r.pick(INT_VALUES); v.setInt32(0, nv | 0, true); return { desc: `llama2c tokenizer: max_token_length -> ${nv | 0}`, bytes: out }; }
    case 1: {
      const old = v.getInt32(rec + 4, true), nv = r.pick([0, -1, old + 1, old + 1000, 2 ** 31 - 1, 1e6]);
      v.setInt32(rec + 4, nv | 0, true);
      return { desc: `llama2c tokenizer: record ${records.indexOf(rec)} length ${old} -> ${nv | 0}`, bytes: out };
    }
    case 2: { const f = r.pick([NaN, Infinity, -Infinity, 3.4e38]); v.setFloat32(rec, f, true); return { desc: `llama2c tokenizer: record ${records.indexOf(rec)} score = ${f}`, bytes: out }; }
    default: {
      const len = v.getInt32(rec + 4, true), seq = r.pick(NON_UTF8);
      if (len > 0) out.set(seq.slice(0, len), rec + 8);
      return { desc: `llama2c tokenizer: record ${records.indexOf(rec)} piece bytes -> [${seq.map((x) => x.toString(16)).join(" ")}]`, bytes: out };
    }
  }
}

/** JSON Lines (metrics.jsonl): a torn last line, one line's JSON mutated, or a byte mutation. */
export function mutateJsonLines(bytes: Uint8Array, r: Rng): Mutant {
  const lines = dec.decode(bytes).split("\n");
  const last = lines.length - (lines[lines.length - 1] === "" ? 2 : 1);
  switch (r.int(3)) {
    case 0: {
      const cut = r.int(lines[last]!.length);
      return { desc: `jsonl: last line torn after ${cut} characters`, bytes: enc.encode([...lines.slice(0, last), lines[last]!.slice(0, cut)].join("\n")) };
    }
    case 1: {
      const i = r.int(last + 1), m = mutateJsonValue(JSON.parse(lines[i]!), r);
      lines[i] = m.text.replace(/\n/g, " ");
      return { desc: `jsonl line ${i + 1}: ${m.desc}`, bytes: enc.encode(lines.join("\n")) };
    }
    default: return mutateBytes(bytes, r);
  }
}

/** A mutant that differs from the seed: some draws change nothing (a dtype set to the one it had), so draw again. */
export function mutate(fn: (bytes: Uint8Array, r: Rng) => Mutant, bytes: Uint8Array, r: Rng): Mutant {
  for (let tries = 0; tries < 1000; tries++) {
    const m = fn(bytes, r);
    if ("link" in m || m.bytes.length !== bytes.length || m.bytes.some((b, i) => b !== bytes[i])) return m;
  }
  throw new Error("fuzz: 1000 draws left the seed unchanged; is the seed file empty?");
}
