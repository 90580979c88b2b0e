// Child processes for the plugin: argv arrays only (no shell), stdin as a string, and a
// result that never rejects so each caller decides what a failure means.
import { execFile } from "node:child_process";

export interface ExecOut {
  code: number;
  stdout: string;
  stderr: string;
}

export function execArgv(
  argv: readonly string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ExecOut> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20, env: opts.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 127) : 0;
        const why = err && typeof err.code !== "number" ? `${err.message}\n` : "";
        resolve({ code, stdout: String(stdout), stderr: why + String(stderr) });
      },
    );
    // EPIPE when the child exits without reading stdin is reported through the callback.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}
