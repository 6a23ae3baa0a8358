// The position flags of `tsformer generate` / `tsformer eval` (context extension at inference) on the real
// stories260K: the CLI's numbers equal the library's for the same scheme, --by-position writes its plot,
// and bad flags get one clear error each.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";
import { loadLlama2c } from "../src/models/llama2c.js";
import { cliIn, failsWith, ok } from "./helpers/cli.js";

const tsf = cliIn();
const tmp = mkdtempSync(join(tmpdir(), "tsformer-positions-"));
const text = join(tmp, "stories.txt");
writeFileSync(text, readFileSync(new URL("../data/tinystories-valid-head.txt", import.meta.url), "utf8").slice(0, 6000));
const model = "data/stories260K.bin";

describe("tsformer eval / generate: position flags", () => {
  it("eval --context 1024 --rerope-window 128 --by-position scores as the library does and plots", async () => {
    const svg = join(tmp, "by-position.svg");
    const out = JSON.parse(ok(tsf("eval", "--model", model, "--text", text, "--context", "1024", "--rerope-window", "128", "--by-position", svg)));
    const tok = await T.Llama2cTokenizer.load("data/tok512.bin", 512);
    const m = T.withPositions(await loadLlama2c(model), { rerope: { window: 128, leak: 0 } });
    const want = T.scoreTokens(m, tok.encode(readFileSync(text, "utf8"), { bos: true }), { window: 1024 });
    assert.equal(out.context, 1024);
    assert.equal(out.tokens, want.tokens);
    assert.ok(Math.abs(out.loss - want.loss) < 1e-9, `${out.loss} vs ${want.loss}`);
    const b = out.byPosition as { from: number; to: number; loss: number; tokens: number }[];
    assert.equal(b.reduce((s, x) => s + x.tokens, 0), want.tokens);
    assert.ok(Math.abs(b.reduce((s, x) => s + x.loss * x.tokens, 0) / want.tokens - want.loss) < 1e-9);
    assert.match(readFileSync(svg, "utf8"), /^<svg[^>]*>[\s\S]*loss by position \(context 1024\)/);
  });

  it("generate past the training length with a RoPE scaling", () => {
    const out = ok(tsf("generate", "--model", model, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8", "--rope-scaling", "yarn", "--rope-factor", "2", "--context", "1024"));
    assert.match(out, /^Once upon a time.{8,}/);
  });

  it("bad flags: one clear error each", () => {
    failsWith(tsf("eval", "--model", model, "--text", text, "--rope-scaling", "ntk2", "--rope-factor", "2"), /--rope-scaling ntk2: unknown scheme; expected none or one of linear, ntk, dynamic, yarn, llama3, mixed_base/);
    failsWith(tsf("eval", "--model", model, "--text", text, "--rope-scaling", "yarn"), /--rope-scaling yarn needs --rope-factor/);
    failsWith(tsf("eval", "--model", model, "--text", text, "--rope-scaling", "yarn", "--rope-factor", "0"), /--rope-factor expects a number > 0, got '0'/);
    failsWith(tsf("eval", "--model", model, "--text", text, "--rerope-window", "512"), /rerope\.window 512 must be below the training length 512/);
    failsWith(tsf("eval", "--model", model, "--text", text, "--rerope-leak", "0.5"), /--rerope-leak needs --rerope-window W/);
  });
});
