// The output side of a decoding loop, token by token: eos ids end it (the eos is not kept), the
// streamed text is cut at the first stop string, and onText receives the text as it completes. The
// rules are generate()'s, so that a decoder producing several tokens per model call (speculative
// decoding) stops exactly where generate would.

import { decodeStream, type DecodeStream, type Tokenizer } from "../tokenizers/tokenizer.js";

export interface OutputOptions {
  /** Stop when this token (or any of these, as HF's eos_token_id lists) is produced (not included in the output). */
  eosId?: number | number[];
  /** Stop when the decoded text contains any of these (the stop string is cut off). */
  stop?: string[];
  /** Streamed text pieces (needs a tokenizer). */
  onText?: (piece: string) => void;
  tokenizer?: Tokenizer;
}

export type StoppedBy = "length" | "eos" | "stop";

export class OutputSink {
  readonly ids: number[] = [];
  private text = "";
  private stoppedBy: StoppedBy = "length";
  private readonly eos: Set<number>;
  private readonly stream: DecodeStream | null;

  /** prompt: decoded before the output (not returned), so that the first piece reads as it does after it. */
  constructor(private readonly o: OutputOptions, prompt: readonly number[]) {
    this.eos = new Set(o.eosId === undefined ? [] : [o.eosId].flat());
    this.stream = o.tokenizer ? decodeStream(o.tokenizer, prompt) : null;
  }

  /** Takes one produced id; false when decoding must stop here (an eos id, or a stop string completed). */
  push(id: number): boolean {
    if (this.eos.has(id)) { this.stoppedBy = "eos"; return false; }
    this.ids.push(id);
    if (!this.stream) return true;
    let piece = this.stream.push(id);
    this.text += piece;
    const hit = this.o.stop?.find((s) => this.text.includes(s));
    if (hit) {
      const cut = this.text.indexOf(hit);
      piece = piece.slice(0, Math.max(0, piece.length - (this.text.length - cut)));
      this.text = this.text.slice(0, cut);
    }
    if (piece) this.o.onText?.(piece);
    if (hit) this.stoppedBy = "stop";
    return !hit;
  }

  /** The result; flushes the text held back (an incomplete UTF-8 sequence) unless a stop string ended it. */
  finish(): { ids: number[]; text?: string; stoppedBy: StoppedBy } {
    if (this.stream && this.stoppedBy !== "stop") {
      const rest = this.stream.flush();
      this.text += rest;
      if (rest) this.o.onText?.(rest);
    }
    return { ids: this.ids, text: this.stream ? this.text : undefined, stoppedBy: this.stoppedBy };
  }
}
