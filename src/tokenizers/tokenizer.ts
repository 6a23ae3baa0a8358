// The tokenizer contract shared by every tokenizer (char, llama2.c, ...), and a streaming decoder.

export interface EncodeOptions {
  /** Prepend the BOS id (tokenizers without one throw when asked). */
  bos?: boolean;
  /** Append the EOS id (tokenizers without one throw when asked). */
  eos?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosId?: number;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Text of the ids. Decoding is concatenative: a piece depends at most on the id just before it. */
  decode(ids: number[]): string;
}

export interface DecodeStream {
  /** Adds one id and returns the text it completes ("" while a character is still incomplete). */
  push(id: number): string;
  /** Returns whatever is still held back (e.g. an incomplete byte sequence at the end, as U+FFFD). */
  flush(): string;
}

/**
 * Incremental decoding for streaming output. Byte-fallback tokens may only form a valid UTF-8
 * character together, so text is released only when the decoded window does not end in an
 * incomplete sequence (U+FFFD). The window starts one emitted chunk back, so a piece that depends on
 * the previous id (e.g. the llama2.c space strip after BOS) is decoded with its context; the
 * concatenation of all returned chunks equals `tok.decode(allIds)`. `context` (e.g. the prompt) is
 * decoded before the streamed ids but not returned: a piece after it is decoded as it reads there
 * (a SentencePiece decoder strips the leading space of the first token of a text, not of a later one).
 */
export function decodeStream(tok: Tokenizer, context: readonly number[] = []): DecodeStream {
  // Up to a few context ids: enough for the previous piece and an incomplete UTF-8 sequence.
  const ids: number[] = context.slice(-4);
  let prefixOffset = 0; // start of the decode window
  let readOffset = ids.length; // ids before this index have been emitted (or are context)

  const take = (force: boolean): string => {
    const prefix = tok.decode(ids.slice(prefixOffset, readOffset));
    const full = tok.decode(ids.slice(prefixOffset));
    if (full.length <= prefix.length || (!force && full.endsWith("\uFFFD"))) return "";
    prefixOffset = readOffset;
    readOffset = ids.length;
    return full.slice(prefix.length);
  };

  return {
    push(id: number): string {
      ids.push(id);
      return take(false);
    },
    flush(): string {
      return take(true);
    },
  };
}
