"""SentencePiece BPE with byte fallback (the Llama tokenizer's kind) as the oracle for
src/tokenizers/hf-json.ts sentencepieceTokenizerJson + HFTokenizer.

Trains a 400-piece BPE model on the repo's text (the stories of data/tinystories-valid-head.txt, the
first 2000 lines of data/tinyshakespeare.txt, a few accented / Greek / Cyrillic lines) and writes its pieces
and the encodings of test strings to test/fixtures/spm/bpe400.json. CJK, emoji, Arabic, Hebrew and
newlines never occur in training, so they take the byte fallback.

Trainer options chosen so that HF's legacy Llama layout (normalizer Prepend("▁") + Replace(" ", "▁"),
no pre-tokenizer) describes the same normalization: normalization_rule_name="identity" (the default
nmt_nfkc would NFKC-fold the text, which the Llama tokenizer.json does not), remove_extra_whitespaces=False
(the default squeezes and strips spaces; Llama's model keeps them) and add_dummy_prefix=True (the "▁"
that Prepend adds). num_threads=1 keeps training deterministic.

Run: /usr/bin/python3 scripts/golden/spm_bpe.py   (python3-sentencepiece; from the repo root)
"""

import io
import json

import sentencepiece as spm

OUT = "test/fixtures/spm/bpe400.json"

EXTRA = [
    "Café, naïve résumé: déjà vu à la façon de Noël. Ça va très bien, señor, über schön.",
    "Ελληνικά: αβγδε ζηθικ λμνξο πρστυ φχψω. Привет, мир! Как дела? Хорошо.",
]

TRAINER = dict(
    model_type="bpe",
    vocab_size=400,
    byte_fallback=True,
    character_coverage=1.0,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=True,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    num_threads=1,
)

CASES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park. One day, she saw a big, red ball.",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "",
    " ",
    "   ",
    "a",
    " a",
    "a ",
    "   leading spaces",
    "trailing spaces   ",
    "multiple   spaces    between     words",
    "tab\tseparated\tvalues",
    "new\nline",
    "\n",
    "two\n\nnewlines\n",
    "windows\r\nline end",
    "I love 🍕 and 🎉!",
    "family 👩‍👩‍👧 and 👍🏽 thumbs",
    "flags 🇫🇷🇯🇵",
    "你好，世界！今天天气不错。",
    "こんにちは世界",
    "안녕하세요",
    "مرحبا بالعالم",
    "שלום עולם",
    "combining e\u0301 and Cafe\u0301",
    "Café, naïve résumé",
    "αβγ and Привет мир",
    "numbers 1234567890 and 3.14159",
    "don't won't I'm you'll we've they're it's",
    "!!! ??? ... ,,, ;;; :::",
    'Lily said, "Wow! Look at that!"',
    "a\u2581b uses the literal lower block",
    "supercalifragilisticexpialidocious",
    "aaaaaaaaaaaaaaaaaaaaaaaa",
    "ThE QuIcK BrOwN FoX",
    "zero\u200bwidth and no\u00a0break space",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "mixed 中文 English 😀 text",
    "The end.\n\nOnce upon a time",
]


def piece_type(sp, i):
    # sentencepiece_model.proto ModelProto.SentencePiece.Type
    if sp.IsUnknown(i):
        return 2
    if sp.IsControl(i):
        return 3
    if sp.IsUnused(i):
        return 5
    if sp.IsByte(i):
        return 6
    return 1  # NORMAL (no user-defined symbols are asked for)


def main():
    with open("data/tinystories-valid-head.txt", encoding="utf-8") as f:
        stories = [line for line in f.read().split("\n") if line and line != "<|endoftext|>"]
    with open("data/tinyshakespeare.txt", encoding="utf-8") as f:
        shakespeare = [line for line in f.read().split("\n")[:2000] if line]
    sentences = stories + shakespeare + EXTRA * 20

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, **TRAINER)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    pieces = [{"piece": sp.IdToPiece(i), "score": sp.GetScore(i), "type": piece_type(sp, i)} for i in range(sp.GetPieceSize())]
    cases = []
    for text in CASES:
        ids = sp.encode(text, add_bos=True)
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids[1:])})

    out = {
        "generator": "scripts/golden/spm_bpe.py",
        "sentencepiece_version": spm.__version__,
        "trainer": TRAINER,
        "pieces": pieces,
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(pieces)} pieces, {len(cases)} cases")


if __name__ == "__main__":
    main()
