// Helpers for the CNI tests and bench: build the plugin (dist + shim) and the libcni
// driver, write node state and conflists, host the CNI server inside a node namespace.
import { type ChildProcess, execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const SHIM = join(REPO, "dist/cni/vxtun-cni");
export const MAIN = join(REPO, "dist/cni/main.js");
export const REF_PLUGINS = "/usr/lib/cni";
const DRIVER_SRC = join(REPO, "test/cni/driver/main.go");
const LIBCNI_SRC = "/usr/share/gocode/src/github.com/containernetworking/cni/libcni";

function newest(dir: string, ext: string): number {
  return Math.max(
    0,
    ...readdirSync(dir)
      .filter((f) => f.endsWith(ext))
      .map((f) => statSync(join(dir, f)).mtimeMs),
  );
}

/** `npm run build:cni` when dist/cni or the shim is older than its sources. */
export function ensureCniBuilt(): void {
  const src = join(REPO, "src/cni");
  const mtime = (p: string) => (existsSync(p) ? statSync(p).mtimeMs : 0);
  if (mtime(MAIN) < newest(src, ".ts")) {
    execFileSync("npx", ["tsc", "-p", join(src, "tsconfig.build.json")], {
      cwd: REPO,
      stdio: "inherit",
    });
  }
  if (mtime(SHIM) < mtime(join(src, "shim/vxtun-cni.c"))) {
    execFileSync("make", ["-s", "-C", join(src, "shim")], { stdio: "inherit" });
  }
}

/** The libcni driver, built offline once per source change; a string says why not. */
export function buildDriver(): { path: string } | { skip: string } {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
  } catch {
    return { skip: "needs Go (Debian golang-go)" };
  }
  if (!existsSync(LIBCNI_SRC)) return { skip: "needs libcni source (golang-github-appc-cni-dev)" };
  const dir = "/tmp/vxtun-cni-driver";
  const out = join(dir, "driver");
  if (existsSync(out) && statSync(out).mtimeMs > statSync(DRIVER_SRC).mtimeMs) return { path: out };
  mkdirSync(dir, { recursive: true });
  execFileSync("go", ["build", "-o", out, DRIVER_SRC], {
    env: {
      ...process.env,
      GOPATH: `${dir}/gopath:/usr/share/gocode`,
      GO111MODULE: "off",
      GOCACHE: `${dir}/cache`,
      GOFLAGS: "",
    },
    stdio: "inherit",
  });
  return { path: out };
}

/** A CNI bin dir holding our shim as `vxtun`. */
/**
 * The common start of a test through libcni: root (network namespaces), the Go driver,
 * the built plugin, and a temporary directory (removed at teardown) with the plugin
 * binaries in `bin`. Undefined when the test is skipped; the plan says why.
 */
export function cniTestEnv(t: {
  plan: (n: number, comment?: string) => void;
  teardown: (fn: () => void) => void;
}): { drv: { path: string }; dir: string; bin: string } | undefined {
  if (skipUnlessRoot(t)) return undefined;
  const drv = buildDriver();
  if ("skip" in drv) {
    t.plan(0, `skipped: ${drv.skip}`);
    return undefined;
  }
  ensureCniBuilt();
  const dir = mkdtempSync(join(tmpdir(), "vxtun-cni-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { drv, dir, bin: makeBinDir(dir) };
}

export function makeBinDir(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  copyFileSync(SHIM, join(bin, "vxtun"));
  return bin;
}

export interface StateOpts {
  node: number;
  mode?: "vxlan" | "vxlan-l2" | "ipip";
  bridge?: string;
  dataplaneSocket?: string;
  cniSocket?: string;
}

export function writeState(file: string, o: StateOpts): void {
  writeFileSync(
    file,
    [
      "FLANNEL_NETWORK=10.244.0.0/16",
      `FLANNEL_SUBNET=10.244.${o.node}.1/24`,
      "FLANNEL_MTU=1450",
      "FLANNEL_IPMASQ=false",
      `VXTUN_MODE=${o.mode ?? "vxlan"}            # vxlan | vxlan-l2 | ipip`,
      `VXTUN_BRIDGE=${o.bridge ?? "vxbr0"}`,
      `VXTUN_NODE=n${o.node}`,
      `VXTUN_DATAPLANE_SOCKET=${o.dataplaneSocket ?? "/nonexistent/vxtun.sock"}`,
      `VXTUN_CNI_SOCKET=${o.cniSocket ?? "/nonexistent/cni.sock"}`,
      "",
    ].join("\n"),
  );
}

export interface ConflistOpts {
  stateFile: string;
  dataDir: string;
  agentSocket: string;
  cniVersion?: string;
  chained?: boolean;
  extra?: Record<string, unknown>;
}

export function writeConflist(file: string, o: ConflistOpts): void {
  const plugins: Record<string, unknown>[] = [
    {
      type: "vxtun",
      stateFile: o.stateFile,
      agentSocket: o.agentSocket,
      dataDir: o.dataDir,
      hairpinMode: true,
      ...o.extra,
    },
  ];
  if (o.chained) {
    plugins.push(
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
      { type: "bandwidth", capabilities: { bandwidth: true } },
    );
  }
  writeFileSync(
    file,
    JSON.stringify({ cniVersion: o.cniVersion ?? "1.0.0", name: "vxtun-test", plugins }),
  );
}

/** Run the libcni driver inside a node namespace (where the plugin does its work). */
export function driver(
  lab: NetnsLab,
  ns: string,
  drv: string,
  binDir: string,
  cacheDir: string,
  args: string[],
  capArgs?: Record<string, unknown>,
) {
  const caps = capArgs ? [`CNI_CAP_ARGS=${JSON.stringify(capArgs)}`] : [];
  return lab.exec(
    ns,
    [
      "env",
      `CNI_PATH=${binDir}:${REF_PLUGINS}`,
      `CNI_CACHE_DIR=${cacheDir}`,
      ...caps,
      drv,
      ...args,
    ],
    { timeoutMs: 120_000 },
  );
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

/** The agent's CNI server (built dist), hosted by a process inside `ns`. */
export async function startCniServerIn(
  lab: NetnsLab,
  ns: string,
  socket: string,
): Promise<ChildProcess> {
  const code = `const m = await import(${JSON.stringify(join(REPO, "dist/cni/server.js"))});
await m.startCniServer({ socket: ${JSON.stringify(socket)} });`;
  const child = lab.spawn(ns, [process.execPath, "--input-type=module", "-e", code]);
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(socket))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`CNI server did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}
