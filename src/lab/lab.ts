// `vxtun lab`: a whole overlay on one machine. N node namespaces on an underlay switch,
// one `vxtun agent` per node (control plane + dataplane + CNI server), M pods per node
// created through the CNI plugin exactly as a container runtime would call it. The lab
// outlives the command that built it; its state (namespace prefix, processes, pods)
// lives in /run/vxtun/labs/<name>/lab.json so status/ping/exec/down can find it.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { controlCall } from "../api/client.js";
import { UserError } from "../api/errors.js";
import { firstHost6 } from "../control/ip6net.js";
import { run } from "../system/exec.js";
import { addrAdd, ip, linkSetMaster, routeReplace } from "../system/iproute.js";
import { removeMasquerade } from "../system/nft.js";
import { enableOverlayIpv6, listLabNamespaces, NetnsLab, removeAllLabNamespaces } from "./netns.js";
import { buildUnderlay, type Underlay, type UnderlayFamily, underlayAddress6 } from "./underlay.js";
import { vxtunCommand } from "./vxtun-process.js";

export const LABS_DIR = "/run/vxtun/labs";
export const LAB_MODES = ["vxlan", "vxlan-l2", "ipip"] as const;
export type LabMode = (typeof LAB_MODES)[number];
/** The pods' address families: IPv4, IPv6, or both (dual stack). */
export const LAB_STACKS = ["ipv4", "ipv6", "dual"] as const;
export type LabStack = (typeof LAB_STACKS)[number];
/** The lab's IPv6 pod network (flannel's IPv6Network): node n gets fd10:244:0:n::/64. */
export const LAB_IPV6_NETWORK = "fd10:244::/48";

export interface LabNode {
  name: string;
  ns: string;
  address: string;
  socket: string;
  cniSocket: string;
  stateFile: string;
  log: string;
  pid: number;
  subnet?: string;
  /** The node's IPv6 subnet (stacks ipv6 and dual). */
  subnet6?: string;
}

export interface LabPod {
  name: string;
  node: string;
  ns: string;
  containerId: string;
  /** The pod's first address: IPv4, or IPv6 in an ipv6 lab. */
  ip: string;
  /** Its IPv6 address (stacks ipv6 and dual). */
  ip6?: string;
}

export interface LabState {
  name: string;
  prefix: string;
  mode: LabMode;
  /** Absent in labs from before stacks existed: ipv4. */
  stack?: LabStack;
  /** The underlay's family (VXLAN over IPv6 with ipv6); absent: ipv4. */
  underlay?: UnderlayFamily;
  store: "file" | "etcd";
  dir: string;
  nodes: LabNode[];
  pods: LabPod[];
  etcd?: { pid: number; endpoint: string };
  /** A host on the underlay outside the pod network (the nodes' default gateway). */
  outside?: { ns: string; address: string; address6?: string };
}

export interface LabUpOptions {
  name?: string;
  nodes: number;
  pods: number;
  mode?: LabMode;
  /** Default ipv4. */
  stack?: LabStack;
  /** Default ipv4; ipv6 carries every pod family in VXLAN over IPv6 (not ipip). */
  underlay?: UnderlayFamily;
  store?: "file" | "etcd";
  /** Extra keys for the shared agent.yaml (the soak turns on metrics). */
  agentConfig?: Record<string, unknown>;
  onProgress?: (msg: string) => void;
}

const here = dirname(fileURLToPath(import.meta.url));
export const OUTSIDE_IP = "198.18.0.253";
/** The outside host on an IPv6 underlay, in the nodes' 2001:2::/64. */
export const OUTSIDE_IP6 = underlayAddress6(0xfd);
const LAB_NAME = /^[a-z0-9][a-z0-9-]{0,15}$/;
/** Labs with more nodes than this run lighter agents (see the agent config below). */
const LIGHT_AGENTS_ABOVE = 8;

function labDir(name: string): string {
  return join(LABS_DIR, name);
}

export function readLab(name: string): LabState {
  const file = join(labDir(name), "lab.json");
  if (!existsSync(file))
    throw new UserError(`no lab "${name}" is up: start one with 'vxtun lab up'`);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LabState;
  } catch (e) {
    throw new UserError(
      `lab state ${file} is corrupt (${(e as Error).message}): 'vxtun lab down --all' clears it`,
    );
  }
}

export function saveLab(s: LabState): void {
  writeFileSync(join(s.dir, "lab.json"), `${JSON.stringify(s, null, 2)}\n`);
}

/** argv that runs the CNI plugin: the native shim when built, else the Node plugin. */
export function cniPluginCommand(): string[] {
  const shim = resolve(here, "../../dist/cni/vxtun-cni");
  if (existsSync(shim)) return [shim];
  if (import.meta.url.endsWith(".ts")) {
    return [process.execPath, "--import", "tsx", resolve(here, "../cni/main.ts")];
  }
  return [process.execPath, resolve(here, "../cni/main.js")];
}

/** Start a process inside a namespace that outlives us (the lab keeps running). */
function spawnDetached(
  ns: string,
  argv: string[],
  log: string,
  env: Record<string, string> = {},
): number {
  const fd = openSync(log, "a");
  const child = spawn("ip", ["netns", "exec", ns, ...argv], {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...env },
  });
  child.unref();
  if (!child.pid) throw new Error(`could not start ${argv.join(" ")}`);
  return child.pid;
}

export async function waitFor<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | undefined>,
  stepMs = 150,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function labUp(o: LabUpOptions): Promise<LabState> {
  const name = o.name ?? "lab";
  if (!LAB_NAME.test(name)) {
    throw new UserError(`lab name "${name}": use at most 16 lowercase letters, digits or '-'`);
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 50) {
    throw new UserError(`--nodes ${o.nodes}: choose 1 to 50`);
  }
  if (!Number.isInteger(o.pods) || o.pods < 0 || o.pods > 50) {
    throw new UserError(`--pods ${o.pods}: choose 0 to 50`);
  }
  if (o.underlay === "ipv6" && o.mode === "ipip") {
    throw new UserError(
      "--mode ipip needs --underlay ipv4 (IP in IPv6, RFC 2473, is not supported): use --mode vxlan or vxlan-l2 over IPv6",
    );
  }
  const dir = labDir(name);
  if (existsSync(join(dir, "lab.json"))) {
    throw new UserError(
      `lab "${name}" is already up: 'vxtun lab down${name === "lab" ? "" : ` --lab ${name}`}' first`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const progress = o.onProgress ?? (() => undefined);
  const net = await NetnsLab.create();
  const state: LabState = {
    name,
    prefix: net.prefix,
    mode: o.mode ?? "vxlan",
    stack: o.stack ?? "ipv4",
    underlay: o.underlay ?? "ipv4",
    store: o.store ?? "file",
    dir,
    nodes: [],
    pods: [],
  };
  saveLab(state);
  try {
    const u6 = state.underlay === "ipv6";
    progress(
      `underlay: ${o.nodes} nodes on a switch (198.18.0.0/24${u6 ? ", VXLAN over 2001:2::/64" : ""})`,
    );
    const underlay = await buildUnderlay(net, o.nodes, 1500, state.underlay);
    const v6 = state.stack !== "ipv4";
    // An IPv4 underlay keeps IPv6 off its links (the pods' IPv6 rides IPv4); an IPv6 one
    // needs it there.
    if (v6) for (const n of underlay.nodes) await enableOverlayIpv6(n.ns, u6 ? undefined : n.dev);
    const outside = u6 ? `${OUTSIDE_IP} and ${OUTSIDE_IP6}` : OUTSIDE_IP;
    progress(`outside host ${outside} (the nodes' default gateway, no route to the pods)`);
    state.outside = {
      ns: await addOutsideHost(net, underlay, u6),
      address: OUTSIDE_IP,
      ...(u6 ? { address6: OUTSIDE_IP6 } : {}),
    };
    saveLab(state);
    // Namespaces now belong to the lab, not to this process: forget them so our exit
    // does not delete them.
    net.detach();
    let store: Record<string, unknown> = { type: "file", dir: join(dir, "store") };
    if (state.store === "etcd") {
      progress("etcd on the underlay switch (198.18.0.254)");
      await addrAdd(underlay.switchNs, "br0", "198.18.0.254/24");
      const endpoint = "http://198.18.0.254:2379";
      const pid = spawnDetached(
        underlay.switchNs,
        [
          "etcd",
          "--data-dir",
          join(dir, "etcd"),
          "--listen-client-urls",
          endpoint,
          "--advertise-client-urls",
          endpoint,
          "--listen-peer-urls",
          "http://198.18.0.254:2380",
        ],
        join(dir, "etcd.log"),
      );
      state.etcd = { pid, endpoint };
      saveLab(state);
      await waitFor("etcd", 15_000, async () => {
        const r = await run([
          "ip",
          "netns",
          "exec",
          underlay.switchNs,
          "etcdctl",
          "--endpoints",
          endpoint,
          "endpoint",
          "health",
        ]);
        return r.code === 0 ? true : undefined;
      });
      store = { type: "etcd", endpoints: [endpoint], prefix: `/vxtun-lab-${name}/network` };
    }
    // One config file for every node, as a DaemonSet's ConfigMap would be: the underlay
    // comes from each node's default route, per-node paths from VXTUN_* variables.
    const cfgFile = join(dir, "agent.yaml");
    writeFileSync(
      cfgFile,
      stringify({
        mode: state.mode,
        device: { name: state.mode === "vxlan-l2" ? "vxtap0" : "vxtun0" },
        store,
        // IPv6 pods need an IPv6 lease; an ipv6 lab still leases IPv4 subnets (flannel's
        // etcd layout keys every lease by one), its pods just get no IPv4 address.
        ...(v6 ? { ipv6Network: LAB_IPV6_NETWORK } : {}),
        // Many nodes on one machine: one forwarding queue (no worker thread) and a
        // small slab each, ~3x less memory per agent (50 agents fit in a few GiB).
        ...(o.nodes > LIGHT_AGENTS_ABOVE ? { io: { queues: 1, slots: 64 } } : {}),
        ...o.agentConfig,
      }),
    );
    for (const n of underlay.nodes) {
      const nd = join(dir, n.name);
      mkdirSync(nd, { recursive: true });
      const node: LabNode = {
        name: n.name,
        ns: n.ns,
        address: n.address,
        socket: join(nd, "dataplane.sock"),
        cniSocket: join(nd, "cni.sock"),
        stateFile: join(nd, "subnet.env"),
        log: join(nd, "agent.log"),
        pid: 0,
      };
      progress(`agent ${n.name} (${n.address})`);
      const env = {
        VXTUN_NAME: `${name}-${n.name}`,
        VXTUN_STATE_FILE: node.stateFile,
        VXTUN_CNI_SOCKET: node.cniSocket,
        VXTUN_PATHS_SOCKET: node.socket,
        VXTUN_PATHS_STATE: join(nd, "state"),
        // The underlay by the IPv6 default route, as flanneld finds flannel-v6.1's.
        ...(u6 ? { VXTUN_LOCAL_FAMILY: "ipv6" } : {}),
      };
      node.pid = spawnDetached(
        n.ns,
        [...vxtunCommand(), "agent", "--config", cfgFile],
        node.log,
        env,
      );
      state.nodes.push(node);
      saveLab(state);
    }
    for (const node of state.nodes) {
      const info = await waitFor(`agent ${node.name} (log: ${node.log})`, 30_000, async () => {
        if (!existsSync(node.stateFile)) return undefined;
        return (await controlCall(node.socket, "agent", {}, 1000)) as {
          subnet?: string;
          subnet6?: string;
          gateway6?: string;
        };
      });
      node.subnet = info.subnet;
      node.subnet6 = info.subnet6;
    }
    saveLab(state);
    const plugin = cniPluginCommand();
    for (const node of state.nodes) {
      for (let p = 1; p <= o.pods; p++) {
        const podName = `${node.name}-p${p}`;
        progress(`pod ${podName} through the CNI plugin`);
        const ns = await net.addNs(podName);
        const containerId = `${name}-${podName}`;
        const conf = {
          cniVersion: "1.0.0",
          name: `vxtun-${name}`,
          type: "vxtun",
          stateFile: node.stateFile,
          agentSocket: node.cniSocket,
          dataDir: join(dir, node.name, "ipam"),
          // IPv6 only: host-local with one IPv6 range, as a runtime would configure it.
          ...(state.stack === "ipv6"
            ? { ipam: ipv6OnlyIpam(node, join(dir, node.name, "ipam")) }
            : {}),
        };
        const r = await runCni(node.ns, plugin, "ADD", containerId, ns, conf);
        const result = JSON.parse(r) as { ips?: { address: string }[] };
        const ips = (result.ips ?? []).map((x) => x.address.split("/")[0]);
        const ip6 = ips.find((a) => a.includes(":"));
        if (!ips[0] || (v6 && !ip6)) {
          throw new Error(`CNI ADD for ${podName} returned no${v6 ? " IPv6" : ""} address: ${r}`);
        }
        state.pods.push({ name: podName, node: node.name, ns, containerId, ip: ips[0], ip6 });
        saveLab(state);
      }
    }
    return state;
  } catch (e) {
    await labDown(name).catch(() => undefined);
    throw e;
  }
}

/** host-local over the node's IPv6 subnet only, gateway reserved. */
function ipv6OnlyIpam(node: LabNode, dataDir: string): Record<string, unknown> {
  if (!node.subnet6) throw new Error(`agent ${node.name} leased no IPv6 subnet (log: ${node.log})`);
  const range = { subnet: node.subnet6, gateway: firstHost6(node.subnet6) };
  return { type: "host-local", ranges: [[range]], dataDir };
}

/**
 * "The internet" as seen from the nodes: a namespace on the underlay switch that every
 * node's default route points at. It has no route to the pod network, so a pod reaches
 * it only when its node masquerades; and the nodes' agents find their underlay
 * interface by that default route, as on a real node. With an IPv6 underlay (`v6`) it
 * is the IPv6 default gateway too.
 */
export async function addOutsideHost(net: NetnsLab, u: Underlay, v6 = false): Promise<string> {
  const ns = await net.addNs("out");
  await net.veth(ns, "eth0", u.switchNs, "pout", { cidrA: `${OUTSIDE_IP}/24` });
  await linkSetMaster(u.switchNs, "pout", "br0");
  if (v6) await ip(ns, ["-6", "addr", "add", `${OUTSIDE_IP6}/64`, "dev", "eth0", "nodad"]);
  for (const n of u.nodes) {
    await routeReplace(n.ns, { dst: "default", via: OUTSIDE_IP });
    if (v6) await ip(n.ns, ["-6", "route", "replace", "default", "via", OUTSIDE_IP6]);
  }
  return ns;
}

export async function runCni(
  nodeNs: string,
  plugin: string[],
  command: string,
  containerId: string,
  podNs: string,
  conf: Record<string, unknown>,
): Promise<string> {
  const env = [
    `CNI_COMMAND=${command}`,
    `CNI_CONTAINERID=${containerId}`,
    `CNI_NETNS=/run/netns/${podNs}`,
    "CNI_IFNAME=eth0",
    `CNI_PATH=${resolve(here, "../../dist/cni")}:/usr/lib/cni:/opt/cni/bin`,
  ];
  const r = await run(["ip", "netns", "exec", nodeNs, "env", ...env, ...plugin], {
    input: JSON.stringify(conf),
    timeoutMs: 30_000,
  });
  if (r.code !== 0) {
    throw new Error(`CNI ${command} ${containerId} failed: ${r.stdout.trim() || r.stderr.trim()}`);
  }
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number): Promise<void> {
  if (!pid || !alive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

/** Stop the lab's processes, delete its namespaces (and so every link) and its state. */
export async function labDown(name: string): Promise<{ namespaces: number; processes: number }> {
  const s = readLab(name);
  let processes = 0;
  for (const n of s.nodes) {
    if (n.pid && alive(n.pid)) processes++;
    await stopPid(n.pid);
    // A clean stop removed it; a killed agent did not (the namespace's end would).
    await removeMasquerade(`${s.name}-${n.name}`, n.ns).catch(() => undefined);
  }
  if (s.etcd) {
    if (alive(s.etcd.pid)) processes++;
    await stopPid(s.etcd.pid);
  }
  const mine = (await listLabNamespaces()).filter((ns) => ns.startsWith(s.prefix));
  await NetnsLab.removeNamespaces(mine);
  rmSync(s.dir, { recursive: true, force: true });
  return { namespaces: mine.length, processes };
}

/** Leftovers of every lab and test run: all vxt-* namespaces, lab processes and state. */
export async function labDownAll(): Promise<{ namespaces: number; processes: number }> {
  let processes = 0;
  if (existsSync(LABS_DIR)) {
    for (const name of (await run(["ls", LABS_DIR])).stdout.split("\n").filter(Boolean)) {
      try {
        processes += (await labDown(name)).processes;
      } catch {
        rmSync(labDir(name), { recursive: true, force: true });
      }
    }
  }
  const removed = await removeAllLabNamespaces();
  return { namespaces: removed.length, processes };
}

export type LabFamily = "ipv4" | "ipv6";

export interface PingMatrix {
  pods: string[];
  /** ok[i][j]: pod i reached pod j in every family the lab has (diagonal true). */
  ok: boolean[][];
  /** The same per family: the lab's families, each with its matrix. */
  families: { family: LabFamily; ok: boolean[][]; failures: number }[];
  /** Failed (pair, family) checks. */
  failures: number;
}

/** The address families a lab's pods have. */
export function labFamilies(s: Pick<LabState, "stack">): LabFamily[] {
  const st = s.stack ?? "ipv4";
  return st === "dual" ? ["ipv4", "ipv6"] : [st];
}

/** Every pod pings every other pod, in each family the lab has. */
export async function labPing(
  name: string,
  onProgress?: (done: number, total: number, what: string) => void,
): Promise<PingMatrix> {
  const s = readLab(name);
  const pods = s.pods;
  const ok = pods.map(() => pods.map(() => true));
  const fams = labFamilies(s);
  const total = pods.length * (pods.length - 1) * fams.length;
  let done = 0;
  let failures = 0;
  const families: PingMatrix["families"] = [];
  for (const family of fams) {
    const fok = pods.map(() => pods.map(() => true));
    let ffail = 0;
    for (const [i, a] of pods.entries()) {
      for (const [j, b] of pods.entries()) {
        if (i === j) continue;
        const dst = family === "ipv6" ? (b.ip6 ?? "") : b.ip;
        const what = `${a.name} -> ${b.name} (${family})`;
        onProgress?.(done, total, what);
        const ping = () => run(["ip", "netns", "exec", a.ns, "ping", "-c", "1", "-W", "2", dst]);
        // One retry: the very first packet may wait for ARP or NDP on both bridges.
        fok[i][j] = dst !== "" && ((await ping()).code === 0 || (await ping()).code === 0);
        if (!fok[i][j]) {
          ffail++;
          ok[i][j] = false;
        }
        onProgress?.(++done, total, what);
      }
    }
    families.push({ family, ok: fok, failures: ffail });
    failures += ffail;
  }
  return { pods: pods.map((p) => p.name), ok, families, failures };
}

function formatOne(pods: string[], ok: boolean[][]): string {
  const w = Math.max(...pods.map((p) => p.length), 4);
  const head = `${"".padEnd(w)}  ${pods.map((p) => p.padStart(w)).join(" ")}`;
  const rows = pods.map(
    (p, i) =>
      `${p.padEnd(w)}  ${ok[i].map((v, j) => (i === j ? "-" : v ? "ok" : "FAIL").padStart(w)).join(" ")}`,
  );
  return [head, ...rows].join("\n");
}

/** One matrix per family (titled when the lab has two). */
export function formatMatrix(m: PingMatrix): string {
  if (m.families.length <= 1) return formatOne(m.pods, m.ok);
  return m.families.map((f) => `${f.family}:\n${formatOne(m.pods, f.ok)}`).join("\n\n");
}

export function formatLab(s: LabState): string {
  const lines = [
    `lab ${s.name}: mode ${s.mode}, stack ${s.stack ?? "ipv4"}, underlay ${s.underlay ?? "ipv4"}, store ${s.store}, namespaces ${s.prefix}*`,
    "",
    "nodes:",
  ];
  for (const n of s.nodes) {
    lines.push(
      `  ${n.name.padEnd(4)} ns ${n.ns.padEnd(18)} underlay ${n.address.padEnd(12)} subnet ${n.subnet ?? "?"}${n.subnet6 ? ` ${n.subnet6}` : ""}`,
    );
  }
  if (s.outside)
    lines.push(
      `  out  ns ${s.outside.ns.padEnd(18)} underlay ${s.outside.address}${s.outside.address6 ? ` ${s.outside.address6}` : ""} (outside host, default gateway)`,
    );
  lines.push("", "pods:");
  for (const p of s.pods)
    lines.push(
      `  ${p.name.padEnd(8)} on ${p.node.padEnd(4)} ${p.ip.padEnd(14)}${p.ip6 && p.ip6 !== p.ip ? ` ${p.ip6}` : ""} ns ${p.ns}`,
    );
  return lines.join("\n");
}

export async function labStatus(name: string): Promise<string> {
  const s = readLab(name);
  const out = [formatLab(s), "", "agents:"];
  for (const n of s.nodes) {
    let info = "not answering";
    try {
      const a = (await controlCall(n.socket, "agent", {}, 2000)) as Record<string, unknown>;
      info = `up, subnet ${a.subnet}, peers ${Array.isArray(a.peers) ? a.peers.length : "?"}, store ${a.storeHealthy === false ? "unreachable" : "ok"}`;
    } catch {
      // reported as not answering
    }
    out.push(
      `  ${n.name.padEnd(4)} pid ${String(n.pid).padEnd(7)} ${alive(n.pid) ? info : "exited"} (log ${n.log})`,
    );
  }
  return out.join("\n");
}

export function podByName(s: LabState, pod: string): LabPod {
  const p = s.pods.find((x) => x.name === pod);
  if (!p)
    throw new UserError(
      `no pod "${pod}" in lab ${s.name}: pods are ${s.pods.map((x) => x.name).join(", ")}`,
    );
  return p;
}
