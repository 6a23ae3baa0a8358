// Training progress on stderr: a cli-progress bar (step/total, loss, tokens/s, ETA) on a terminal; on a
// non-TTY stream (CI, a log file) a plain line every `every` steps and at the last step, no escape codes.

import cliProgress from "cli-progress";

export interface ProgressOptions {
  total: number;
  /** First step of this run (resume), so rate and ETA count only the steps done here. */
  start?: number;
  /** Plain-line interval for non-TTY streams. */
  every?: number;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  label?: string;
}

export interface ProgressInfo { loss: number; tokensPerSec: number }

export interface Progress {
  update(step: number, info: ProgressInfo): void;
  /** A line of its own (e.g. the losses of an evaluation), kept above the bar on a terminal. */
  log(line: string): void;
  stop(): void;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const { total, start = 0, every = 10, stream = process.stderr, label = "train" } = opts;
  if (!Number.isSafeInteger(every) || every < 1) throw new RangeError(`progress: every must be a positive integer, got ${every}`);
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream, hideCursor: true, etaBuffer: 20,
      format: `${label} |{bar}| {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, start, { loss: "-", tps: "-" });
    return {
      update: (step, i) => bar.update(step, { loss: i.loss.toFixed(4), tps: Math.round(i.tokensPerSec) }),
      // Clear the bar's line, print, and let the next update draw the bar below.
      log: (line) => { stream.write(`\r\x1b[2K${line}\n`); },
      stop: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  return {
    update(step, i) {
      if (step % every !== 0 && step !== total) return;
      const eta = ((Date.now() - t0) / 1000 / Math.max(step - start, 1)) * (total - step);
      stream.write(`${label} step ${step}/${total} | loss ${i.loss.toFixed(4)} | ${Math.round(i.tokensPerSec)} tok/s | ETA ${fmtTime(eta)}\n`);
    },
    log(line) { stream.write(`${label} ${line}\n`); },
    stop() {},
  };
}
