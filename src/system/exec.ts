// The one way vxtun runs another program: argv arrays only (no shell, so nothing from
// input is ever parsed as a command line), stdin as a string, and a result that never
// rejects so each caller decides what a failure means. Kept to node:child_process alone:
// the CNI plugin's slow path loads this on every call.
import { execFile } from "node:child_process";

export interface ExecResult {
  /** Exit status; 127 when there is none (could not start, timed out, killed). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** The whole environment of the child (default: this process's). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, env: opts.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 127) : 0;
        // Not the program's own failure (spawn error, timeout): say so on stderr.
        const why = err && typeof err.code !== "number" ? `${err.message}\n` : "";
        resolve({ code, stdout: String(stdout), stderr: why + String(stderr) });
      },
    );
    // EPIPE when the child exits without reading stdin is reported through the callback.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

/** A command that exited non-zero, with what it printed. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    const why = result.stderr.trim() || result.stdout.trim();
    super(`${argv.join(" ")} failed (exit ${result.code}): ${why}`);
  }
}

/** Like run(), but a non-zero exit rejects with a CommandError; resolves to stdout. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new CommandError(argv, r);
  return r.stdout;
}
