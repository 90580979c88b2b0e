// Helpers for node-agent tests: start `vxtun agent` in lab node namespaces with a
// private directory per node (state, subnet.env, CNI socket), and poll control-socket
// tables until a condition holds, timing it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetnsLab } from "../../src/lab/netns.js";
import type { UnderlayNode } from "../../src/lab/underlay.js";
import { startVxtun, type VxtunProc } from "../../src/lab/vxtun-process.js";

export interface AgentReport {
  subnet: string;
  gateway: string;
  store: { kind: string; ok: boolean; watching?: boolean; error?: string };
  peers: { address: string; subnet: string; vtepMac?: string }[];
}

export interface AgentNode {
  node: UnderlayNode;
  dir: string;
  proc: VxtunProc;
  report: () => Promise<AgentReport>;
  /** Overlay route prefixes in the dataplane (`route show`). */
  routes: () => Promise<string[]>;
  /** Remote VTEP addresses in the dataplane's FDB (`fdb show`). */
  fdbDsts: () => Promise<string[]>;
  restart: () => Promise<void>;
}

export function tempDir(t: { teardown: (fn: () => unknown) => void }, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vxtun-${tag}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startAgent(
  t: { teardown: (fn: () => unknown) => void },
  lab: NetnsLab,
  node: UnderlayNode,
  extra: Record<string, unknown>,
): Promise<AgentNode> {
  const dir = tempDir(t, node.name);
  const config = {
    name: node.name,
    mode: "vxlan",
    local: { address: node.address },
    device: { name: "vxtun0" },
    paths: { state: join(dir, "state") },
    stateFile: join(dir, "subnet.env"),
    cniSocket: join(dir, "cni.sock"),
    ...extra,
  };
  const a: AgentNode = {
    node,
    dir,
    proc: await startVxtun(lab, node.ns, config, { verb: "agent" }),
    report: async () => (await a.proc.call("agent")) as AgentReport,
    routes: async () =>
      ((await a.proc.call("route.show", { json: true })) as { dst: string }[])
        .map((r) => r.dst)
        .sort(),
    fdbDsts: async () =>
      ((await a.proc.call("fdb.show", { json: true })) as { dst: string }[])
        .map((f) => f.dst)
        .sort(),
    restart: async () => {
      a.proc = await startVxtun(lab, node.ns, config, { verb: "agent" });
    },
  };
  t.teardown(() => a.proc.stop());
  return a;
}

/** Poll until `cond` holds; resolves with the elapsed ms, rejects after timeoutMs. */
export async function waitFor(
  what: string,
  cond: () => Promise<boolean>,
  timeoutMs: number,
  stepMs = 25,
): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      if (await cond()) return Date.now() - t0;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Every agent routes exactly the others' subnets and has FDB entries for their VTEPs. */
export async function meshComplete(
  agents: AgentNode[],
  subnets: Map<AgentNode, string>,
): Promise<boolean> {
  for (const a of agents) {
    const want = agents
      .filter((b) => b !== a)
      .map((b) => subnets.get(b)!)
      .sort();
    const dsts = agents
      .filter((b) => b !== a)
      .map((b) => b.node.address)
      .sort();
    if (JSON.stringify(await a.routes()) !== JSON.stringify(want)) return false;
    if (JSON.stringify(await a.fdbDsts()) !== JSON.stringify(dsts)) return false;
  }
  return true;
}

/** A ping of `count` packets at 5/s from one node's bridge address to another's. */
export async function pingBridges(
  lab: NetnsLab,
  from: AgentNode,
  fromIp: string,
  toIp: string,
  count = 3,
) {
  return lab.exec(from.node.ns, [
    "ping",
    "-c",
    String(count),
    "-i",
    "0.2",
    "-W",
    "1",
    "-I",
    fromIp,
    toIp,
  ]);
}
