// GPT-2's byte-level pieces (openai/gpt-2 src/encoder.py; HF tokenizers pre_tokenizers/byte_level.rs):
// the byte -> printable-symbol table, the pre-tokenization regex, and cutting text on special tokens.

/**
 * bytes_to_unicode: BYTE_SYMBOLS[b] is the one-character symbol of byte b. The 188 printable bytes
 * ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 (controls, space, 0x7F-0xA0, 0xAD)
 * take U+0100, U+0101, ... in byte order, so that no symbol is whitespace or a control character.
 */
export const BYTE_SYMBOLS: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + n++));
  return out;
})();

/**
 * GPT-2's pre-tokenizer pattern (encoder.py `self.pat`; HF byte_level.rs `RE`), with `\s` as Oniguruma,
 * which HF tokenizers compiles it with, reads it: Unicode White_Space (U+0085 included). ECMAScript's `\s`
 * (@huggingface/tokenizers uses it) differs on U+0085 and U+FEFF.
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** A regex matching any of the special tokens, the longest one first at a position (HF's leftmost-longest match); null for none. */
export function specialTokenSplitter(specials: readonly string[]): RegExp | null {
  if (specials.length === 0) return null;
  const escaped = [...specials].sort((a, b) => b.length - a.length).map((s) => s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&"));
  return new RegExp(escaped.join("|"), "gu");
}

/** The text between the special tokens (special tokens dropped, empty pieces kept out). */
export function splitOnSpecialTokens(text: string, splitter: RegExp | null): string[] {
  if (splitter === null) return text === "" ? [] : [text];
  return text.split(splitter).filter((s) => s !== "");
}
