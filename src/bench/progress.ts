// Progress for long runs: a bar on a terminal, plain lines otherwise (CI logs, pipes).
import { Presets, SingleBar } from "cli-progress";

export type ProgressFn = (done: number, total: number, what: string) => void;

export function progressDisplay(label: string): { update: ProgressFn; stop: () => void } {
  if (!process.stderr.isTTY) {
    let last = "";
    return {
      update: (done, total, what) => {
        const line = `${label} [${done}/${total}] ${what}`;
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
      },
      stop: () => undefined,
    };
  }
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} {what}`, stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update: (done, total, what) => {
      if (!started) {
        bar.start(total, done, { what });
        started = true;
      } else bar.update(done, { what });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
