"""Golden merges for byte-level BPE training (src/tokenizers/bpe-train.ts), by a plain reference trainer.

Writes test/fixtures/bpe/golden.json (run from the repo root via scripts/golden/run.sh). Needs no torch.

The trainer is the textbook loop of Sennrich et al. 2016 (Algorithm 1): count every adjacent pair over all
words, merge the most frequent pair everywhere, repeat; nothing is kept between steps. The rules it shares
with bpe-train.ts (each written here from the description, not from that code):
  - vocabulary: the special tokens get ids 0..k-1, then the 256 byte symbols of GPT-2's bytes_to_unicode
    (openai/gpt-2 src/encoder.py) sorted by code point, then one id per merge in merge order. A merged
    string is never already in the vocabulary (asserted), except a special token's: such a pair is
    never merged.
  - tie-break: highest count, then the smallest (left id, right id).
  - stop when the vocabulary has vocab_size tokens, no pair is left, or the best count < min_frequency.
  - the text is cut on the special tokens first (leftmost, longest token first at a position), then
    pre-tokenized with GPT-2's pattern
      's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    Debian's python3 has no `regex` module, so the pattern is built for `re`: \\p{L} and \\p{N} become
    explicit classes of every code point whose unicodedata category starts with L or N, and \\s is
    the Unicode White_Space property (Oniguruma's \\s, which HF tokenizers compiles the pattern with),
    written out: U+0085 is white space, U+FEFF is not (both are in the corpus).
    The corpus only uses characters assigned in Unicode <= 14 (Python's unicodedata here), so the
    classes agree with Node's.
  - each pre-token is UTF-8 encoded and each byte mapped to its symbol; words never span documents.

JSON: {"corpora": {name: [document, ...]}, "cases": [{"name", "corpus", "vocab_size", "special_tokens",
"min_frequency", "vocab" (tokens in id order), "merges" ([left, right] in order)}]}. Cases (the corpora are
in the file, so the test needs no other file):
  tinystories: the first ~20 KB of data/tinystories-valid-head.txt (whole stories, each followed by an
    <|endoftext|> line) + lines of accented Latin, Greek, Cyrillic, CJK, emoji, Arabic-Indic digits,
    fractions, NBSP / ideographic space, tabs, runs of spaces and contractions; vocab 400.
  tinystories_minfreq: the same corpus, vocab 2000, min_frequency 4: ends on min_frequency.
  specials: three documents (a list, so pre-tokens never span two) with the specials "<s>" and "<s>x"
    (one a prefix of the other: the longest wins) and "Ġa", which the frequent pair ("Ġ", "a") of " a..."
    would spell (asserted: without that special, it is the first merge).
"""

import json
import os
import re
import sys
import unicodedata

OUT_PATH = os.path.join("test", "fixtures", "bpe", "golden.json")
CORPUS_PATH = os.path.join("data", "tinystories-valid-head.txt")
EOT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2 encoder.py bytes_to_unicode: byte -> one printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_SYM = bytes_to_unicode()


def category_class(prefix):
    """A `re` character class body of every code point whose general category starts with `prefix`."""
    ranges, start, prev = [], None, None
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))
    esc = lambda cp: "\\U%08x" % cp  # noqa: E731
    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


# Unicode White_Space (PropList.txt): tab..CR, space, NEL, NBSP, and the Zs / Zl / Zp characters.
WS = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
L, N = category_class("L"), category_class("N")
GPT2_PAT = re.compile(
    "'s|'t|'re|'ve|'m|'ll|'d"
    f"| ?[{L}]+| ?[{N}]+| ?[^{WS}{L}{N}]+|[{WS}]+(?![^{WS}])|[{WS}]+"
)


def split_specials(text, specials):
    """The pieces of text between special tokens; at each position the longest matching special wins."""
    by_len = sorted(specials, key=len, reverse=True)
    pieces, cur, i = [], [], 0
    while i < len(text):
        hit = next((s for s in by_len if text.startswith(s, i)), None)
        if hit is None:
            cur.append(text[i])
            i += 1
        else:
            pieces.append("".join(cur))
            cur = []
            i += len(hit)
    pieces.append("".join(cur))
    return [p for p in pieces if p]


def train(documents, vocab_size, specials, min_frequency):
    vocab = list(specials) + sorted(BYTE_SYM.values(), key=ord)
    ids = {t: i for i, t in enumerate(vocab)}
    word_freq = {}
    for doc in documents:
        for piece in split_specials(doc, specials):
            for w in GPT2_PAT.findall(piece):
                word_freq[w] = word_freq.get(w, 0) + 1
    words = [[ids[BYTE_SYM[b]] for b in w.encode("utf-8")] for w in word_freq]
    freqs = list(word_freq.values())
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for w, f in zip(words, freqs):
            for pair in zip(w, w[1:]):
                if vocab[pair[0]] + vocab[pair[1]] not in specials:
                    counts[pair] = counts.get(pair, 0) + f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < min_frequency:
            break
        a, b = best
        s = vocab[a] + vocab[b]
        assert s not in ids, f"merge {vocab[a]!r} + {vocab[b]!r} spells a token already in the vocabulary"
        c = ids[s] = len(vocab)
        vocab.append(s)
        merges.append([vocab[a], vocab[b]])
        for k, w in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(c)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
    return vocab, merges


UNICODE_LINES = "\n".join([
    "Café crème brûlée, naïve façade — déjà vu! Élodie's piñata; Ångström & Øresund.",
    "Ελληνικά: καλημέρα κόσμε. Русский текст: привет, мир! Ещё раз — привет.",
    "日本語のテキストと中文文本。한국어 문장도 있어요.",
    "Emoji 🙂🙂 👍🏽 🐱‍👤 ✨✨✨ and symbols ©®™ ½ ¾ ² ³ № ∑∞≠.",
    "Digits ٣٤٥ and १२३ beside 2024, 3.14159, 1,000,000 and x²+y².",
    "Spaces:\u00a0no-break,\u3000ideographic,\ttab\t\tand   runs   of    spaces   \n   \n",
    "Contractions: don't, we'll, they're, I've, she'd, it's, I'M, O'Neil's ''quoted'' 's",
    "Combining: e\u0301 a\u0308 n\u0303, zero\u200bwidth, soft\u00adhyphen.",
    "Next\u0085line,\u0085 \u0085x, and a\ufeffBOM \ufeff\ufeff word.",
])


def tinystories_corpus(limit=20000):
    with open(CORPUS_PATH, encoding="utf-8") as f:
        text = f.read()
    cut = text.rfind(EOT + "\n", 0, limit) + len(EOT) + 1
    return text[:cut] + UNICODE_LINES + "\n" + EOT + "\n"


SPECIALS_DOCS = [
    "a ab ab abc abc abc ab a a<s>x abc<s> cab cab bca bca",
    "<s>xab ab<s>ab abc a a a xa xa<s>xa bb bb bb",
    "b<s> abc<s>x<s>x a cc cb cb ca ca",
]


def main():
    out_dir = os.path.dirname(OUT_PATH)
    os.makedirs(out_dir, exist_ok=True)
    corpora = {"tinystories": [tinystories_corpus()], "specials": SPECIALS_DOCS}
    cases = [
        {"name": "tinystories", "corpus": "tinystories", "vocab_size": 400, "special_tokens": [EOT], "min_frequency": 0},
        {"name": "tinystories_minfreq", "corpus": "tinystories", "vocab_size": 2000, "special_tokens": [EOT], "min_frequency": 4},
        {"name": "specials", "corpus": "specials", "vocab_size": 300, "special_tokens": ["<s>", "<s>x", "Ġa"], "min_frequency": 0},
    ]
    for case in cases:
        vocab, merges = train(corpora[case["corpus"]], case["vocab_size"], case["special_tokens"], case["min_frequency"])
        case.update(vocab=vocab, merges=merges)
        print(f"{case['name']}: {len(vocab)} tokens, {len(merges)} merges", file=sys.stderr)
    assert len(cases[0]["vocab"]) == 400 and len(cases[1]["vocab"]) < 2000
    # Without the special "Ġa", ("Ġ", "a") would be the first merge of the specials case.
    _, merges = train(SPECIALS_DOCS, 300, ["<s>", "<s>x"], 0)
    assert merges[0] == ["Ġ", "a"] and ["Ġ", "a"] not in cases[2]["merges"]
    doc = {
        "generator": "scripts/golden/bpe_train.py (Sennrich et al. 2016 Algorithm 1, all pairs recounted each step)",
        "source": CORPUS_PATH + " (first stories) + Unicode lines",
        "corpora": corpora,
        "cases": cases,
    }
    tmp = OUT_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, OUT_PATH)
    print(f"wrote {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
