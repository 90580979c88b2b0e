// Start `vxtun run` (from source, through tsx) inside a test namespace and wait until
// its control socket answers. The process is owned by the lab: killed at cleanup.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { controlCall } from "../../src/dataplane/control-socket.js";
import type { NetnsLab } from "../../src/lab/netns.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = [process.execPath, "--import", "tsx", join(REPO, "src/cli/main.ts")];

export interface VxtunProc {
  socket: string;
  child: ChildProcess;
  output: () => string;
  call: (op: string, args?: Record<string, unknown>) => Promise<unknown>;
  cli: (args: string[]) => Promise<{ stdout: string; stderr: string; code: number }>;
  stop: () => Promise<void>;
}

export async function startVxtun(
  lab: NetnsLab,
  ns: string,
  config: Record<string, unknown>,
): Promise<VxtunProc> {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-test-"));
  const socket = join(dir, "ctl.sock");
  const cfgFile = join(dir, "config.yaml");
  writeFileSync(cfgFile, stringify({ ...config, paths: { socket } }));
  const child = lab.spawn(ns, [...CLI, "run", "--config", cfgFile, "--log-level", "warn"]);
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vxtun exited (${child.exitCode}): ${out}`);
    try {
      await controlCall(socket, "info", {}, 1000);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`vxtun did not start within 20 s: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    socket,
    child,
    output: () => out,
    call: (op, args = {}) => controlCall(socket, op, args),
    cli: (args) => lab.exec(ns, [...CLI, "--socket", socket, ...args]),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
