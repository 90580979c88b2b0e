// Start a vxtun command (`run`, `agent`) inside a lab namespace and wait until its
// control socket answers. Used by labs, benchmarks and tests alike; the process belongs
// to the NetnsLab, which kills it at cleanup.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { controlCall } from "../api/client.js";
import { DATAPLANE_NODE_FLAGS } from "../dataplane/dataplane.js";
import type { NetnsLab } from "./netns.js";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * argv that runs this same vxtun: the bundled CLI (dist/bundle/, what bin/vxtun.js runs)
 * when we are compiled, or the TypeScript source through tsx when we run from source
 * (tests, benches).
 */
export function vxtunCommand(): string[] {
  // Extra Node flags for the children (profiling: VXTUN_NODE_FLAGS="--cpu-prof").
  // DATAPLANE_NODE_FLAGS: V8 settings for a forwarder (see src/dataplane/dataplane.ts).
  const flags = [
    ...DATAPLANE_NODE_FLAGS,
    ...(process.env.VXTUN_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
  ];
  if (import.meta.url.endsWith(".ts")) {
    return [process.execPath, ...flags, "--import", "tsx", resolve(here, "../cli/main.ts")];
  }
  // From dist/<folder>/ and from dist/bundle/ alike.
  return [process.execPath, ...flags, resolve(here, "../bundle/main.js")];
}

export interface VxtunProc {
  socket: string;
  child: ChildProcess;
  output: () => string;
  call: (op: string, args?: Record<string, unknown>) => Promise<unknown>;
  cli: (args: string[]) => Promise<{ stdout: string; stderr: string; code: number }>;
  stop: () => Promise<void>;
}

/** Write `config` (with a private control socket) and start `vxtun <verb> --config`. */
export async function startVxtun(
  lab: NetnsLab,
  ns: string,
  config: Record<string, unknown>,
  opts: { verb?: string; timeoutMs?: number; logLevel?: string } = {},
): Promise<VxtunProc> {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-"));
  const socket = join(dir, "ctl.sock");
  const cfgFile = join(dir, "config.yaml");
  const paths = { ...((config.paths as object) ?? {}), socket };
  writeFileSync(cfgFile, stringify({ ...config, paths }));
  const cmd = vxtunCommand();
  const child = lab.spawn(ns, [
    ...cmd,
    opts.verb ?? "run",
    "--config",
    cfgFile,
    "--log-level",
    opts.logLevel ?? "warn",
  ]);
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vxtun exited (${child.exitCode}): ${out.trim()}`);
    try {
      await controlCall(socket, "info", {}, 1000);
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`vxtun did not answer on ${socket} in time: ${out.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    socket,
    child,
    output: () => out,
    call: (op, args = {}) => controlCall(socket, op, args),
    cli: (args) => lab.exec(ns, [...cmd, "--socket", socket, ...args]),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
