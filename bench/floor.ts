// What a user-space hop costs at the least, measured between the same two nodes and
// pods of a running `vxtun lab`: ping RTT over three overlays that share everything but
// the hop (the kernel's vxlan, a minimal C relay, bench/floor/relay.c: a TUN and a UDP
// socket, blocking epoll, one packet per syscall, no lookups; and vxtun itself), and
// node-to-node TCP over the kernel's vxlan and vxtun with how busy the machine's vCPUs
// were. Only the route for the peer's pod subnet on each node moves, between the
// kernel's vxlan device, the relay's TUN and vxtun's TUN; rounds alternate the paths so
// that the machine's drift falls on all of them.
//   vxtun lab up --nodes 2 --pods 1
//   node --import tsx bench/floor.ts [--lab lab] [--rounds 3] [--count 200]
//        [--interval 0.02] [--warm 2000] [--tcp-seconds 5 (0: no TCP)]
// Root only; everything runs inside the lab's namespaces, and what it adds (the relay's
// TUN, a vxlan device, routes, neighbour and FDB entries) is removed at the end.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { machineJiffies, median } from "../src/bench/traffic.js";
import { addFlannelPeer, addKernelVxlan } from "../src/lab/kernel-vxlan.js";
import { type LabNode, readLab } from "../src/lab/lab.js";

const { values } = parseArgs({
  options: {
    lab: { type: "string", default: "lab" },
    rounds: { type: "string", default: "3" },
    count: { type: "string", default: "200" },
    interval: { type: "string", default: "0.02" },
    warm: { type: "string", default: "2000" },
    "tcp-seconds": { type: "string", default: "5" },
  },
});
const lab = readLab(values.lab);
const [from, to] = [lab.pods[0], lab.pods.find((p) => p.node !== lab.pods[0]?.node)];
if (!from || !to)
  throw new Error("the lab needs pods on two nodes: vxtun lab up --nodes 2 --pods 1");
if (lab.mode !== "vxlan") throw new Error(`the lab runs ${lab.mode}; this compares vxlan`);
const nodeOf = (name: string) => lab.nodes.find((n) => n.name === name)!;
const a = nodeOf(from.node);
const b = nodeOf(to.node);

const RELAY_DEV = "flr0";
const RELAY_PORT = "9472";
const KVX_DEV = "kvx0";
const KVX_PORT = 4790;
const KVX_VNI = 77;
const kvxMac = (i: number) => `0e:f1:00:00:00:0${i + 1}`;

const execFileAsync = promisify(execFile);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8" });
const ipn = (ns: string, ...args: string[]) => sh("ip", ["-n", ns, ...args]);
const ipJson = (ns: string, ...args: string[]) => JSON.parse(ipn(ns, "-j", ...args));

interface Side {
  node: LabNode;
  peer: LabNode;
  /** The peer's pod subnet, its first address (the kernel vxlan's next hop). */
  peerSubnet: string;
  peerGw: string;
  /** This node's subnet's first address (the kernel vxlan device's own). */
  ownGw: string;
  /** vxtun's TUN, its MTU, and the underlay interface. */
  tun: string;
  mtu: number;
  wire: string;
}

function side(node: LabNode, peer: LabNode): Side {
  if (!peer.subnet || !node.subnet) throw new Error("a node has no pod subnet yet");
  const links = ipJson(node.ns, "-d", "link", "show") as {
    ifname: string;
    mtu: number;
    linkinfo?: { info_kind?: string };
  }[];
  const tun = links.find((l) => l.linkinfo?.info_kind === "tun");
  const addrs = ipJson(node.ns, "addr", "show") as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  const wire = addrs.find((x) => x.addr_info.some((i) => i.local === node.address))?.ifname;
  if (!tun || !wire) throw new Error(`${node.name}: no TUN or underlay interface found`);
  return {
    node,
    peer,
    peerSubnet: peer.subnet,
    peerGw: peer.subnet.split("/")[0]!,
    ownGw: node.subnet.split("/")[0]!,
    tun: tun.ifname,
    mtu: tun.mtu,
    wire,
  };
}

const sides = [side(a, b), side(b, a)];
const dir = mkdtempSync(join(tmpdir(), "vxtun-floor-"));
const relayBin = join(dir, "relay");
const relays: ChildProcess[] = [];
const here = dirname(fileURLToPath(import.meta.url));

type Path = "kernel-vxlan" | "c-relay" | "vxtun";
const PATHS: Path[] = ["kernel-vxlan", "c-relay", "vxtun"];

function route(s: Side, path: Path): void {
  if (path === "kernel-vxlan") {
    ipn(s.node.ns, "route", "replace", s.peerSubnet, "via", s.peerGw, "dev", KVX_DEV, "onlink");
  } else {
    ipn(s.node.ns, "route", "replace", s.peerSubnet, "dev", path === "vxtun" ? s.tun : RELAY_DEV);
  }
}

/** The device the peer subnet's route uses now (an agent could have put its own back). */
function routeDev(s: Side): string {
  const r = ipJson(s.node.ns, "route", "show", s.peerSubnet) as { dev: string }[];
  return r[0]?.dev ?? "(none)";
}

function waitForLink(ns: string, dev: string): void {
  for (let i = 0; i < 100; i++) {
    try {
      ipn(ns, "link", "show", dev);
      return;
    } catch {
      execFileSync("sleep", ["0.05"]);
    }
  }
  throw new Error(`${ns}: ${dev} did not appear`);
}

async function setup(): Promise<void> {
  sh("gcc", ["-O2", "-Wall", "-o", relayBin, resolve(here, "floor/relay.c")]);
  for (const [i, s] of sides.entries()) {
    const p = spawn(
      "ip",
      ["netns", "exec", s.node.ns, relayBin, RELAY_DEV, s.peer.address, RELAY_PORT],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    relays.push(p);
    waitForLink(s.node.ns, RELAY_DEV);
    ipn(s.node.ns, "link", "set", RELAY_DEV, "mtu", String(s.mtu), "up");
    // The kernel baseline as the bench builds it: flannel's programming, checksums
    // left to the (absent) NIC.
    await addKernelVxlan({
      ns: s.node.ns,
      dev: KVX_DEV,
      vni: KVX_VNI,
      port: KVX_PORT,
      local: s.node.address,
      underlayDev: s.wire,
      vtepIp: s.ownGw,
      vtepMac: kvxMac(i),
      mtu: s.mtu,
      finishChecksums: false,
    });
  }
  for (const [i, s] of sides.entries()) {
    await addFlannelPeer(s.node.ns, KVX_DEV, {
      subnet: s.peerSubnet,
      vtepIp: s.peerGw,
      vtepMac: kvxMac(1 - i),
      publicIp: s.peer.address,
    });
  }
}

function cleanup(): void {
  for (const s of sides) {
    try {
      route(s, "vxtun");
    } catch (e) {
      console.error(`${s.node.name}: could not restore vxtun's route: ${(e as Error).message}`);
    }
    try {
      ipn(s.node.ns, "link", "del", KVX_DEV);
    } catch {}
  }
  for (const p of relays) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

function pings(count: number, interval: string): number[] {
  const out = sh("ip", [
    ...["netns", "exec", from!.ns, "ping", "-c", String(count), "-i", interval],
    ...["-W", "2", to!.ip],
  ]);
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((x, y) => x - y);
}
const pct = (v: number[], q: number) => v[Math.min(v.length - 1, Math.floor(q * v.length))] ?? NaN;

/**
 * Node-to-node TCP (one stream, between the nodes' own subnet addresses, so no pod
 * veth or bridge is on the path) and how busy all vCPUs were from 1 s in to 1 s
 * before the end, as the overlay bench measures it.
 */
async function nodeTcp(seconds: number): Promise<{ gbps: number; busy: number }> {
  const [sa, sb] = [sides[0]!, sides[1]!];
  const server = spawn("ip", [
    ...["netns", "exec", sb.node.ns, "iperf3", "-s", "-1", "-B", sb.ownGw, "-p", "5399"],
  ]);
  try {
    await sleep(300);
    const client = execFileAsync(
      "ip",
      [
        ...["netns", "exec", sa.node.ns, "iperf3", "-c", sb.ownGw, "-B", sa.ownGw, "-p", "5399"],
        ...["-t", String(seconds), "-J"],
      ],
      { encoding: "utf8", timeout: (seconds + 20) * 1000 },
    );
    await sleep(1000);
    const j0 = machineJiffies();
    await sleep((seconds - 2) * 1000);
    const j1 = machineJiffies();
    const j = JSON.parse((await client).stdout) as {
      end?: { sum_received?: { bits_per_second: number } };
    };
    return {
      gbps: (j.end?.sum_received?.bits_per_second ?? 0) / 1e9,
      busy: (100 * (j1.busy - j0.busy)) / Math.max(1, j1.total - j0.total),
    };
  } finally {
    server.kill("SIGKILL");
  }
}

const p50s = new Map<Path, number[]>(PATHS.map((p) => [p, []]));
const p90s = new Map<Path, number[]>(PATHS.map((p) => [p, []]));
const tcp = new Map<Path, { gbps: number; busy: number }[]>(PATHS.map((p) => [p, []]));
const count = Number(values.count);
const tcpSeconds = Number(values["tcp-seconds"]);
// Interrupted: put vxtun's routes back and remove what we added before exiting.
process.once("SIGINT", () => {
  cleanup();
  process.exit(130);
});
try {
  await setup();
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const path of PATHS) {
      for (const s of sides) route(s, path);
      sh("ip", ["netns", "exec", from.ns, "ping", "-f", "-q", "-c", values.warm, "-W", "1", to.ip]);
      const rtts = pings(count, values.interval);
      // The relay moves one packet per syscall: its TCP says nothing new.
      const t = path !== "c-relay" && tcpSeconds >= 3 ? await nodeTcp(tcpSeconds) : undefined;
      const moved = sides.filter(
        (s) =>
          routeDev(s) !== (path === "vxtun" ? s.tun : path === "c-relay" ? RELAY_DEV : KVX_DEV),
      );
      if (moved.length > 0) throw new Error(`round ${round} ${path}: a route moved during the run`);
      if (rtts.length < count * 0.9)
        throw new Error(`round ${round} ${path}: ${rtts.length}/${count} replies`);
      p50s.get(path)!.push(pct(rtts, 0.5));
      p90s.get(path)!.push(pct(rtts, 0.9));
      if (t) tcp.get(path)!.push(t);
      console.error(
        `round ${round} ${path}: ping p50 ${pct(rtts, 0.5)} ms, p90 ${pct(rtts, 0.9)} ms` +
          (t ? `; TCP ${t.gbps.toFixed(2)} Gbit/s, vCPUs ${t.busy.toFixed(0)} % busy` : ""),
      );
    }
  }
} finally {
  cleanup();
}

const fmt = (v: number[], d: number) => v.map((x) => x.toFixed(d)).join(", ");
const k = median(p50s.get("kernel-vxlan")!);
const kt = median(tcp.get("kernel-vxlan")!.map((t) => t.gbps));
console.log(
  "| path | ping p50 (ms), per round | median | × kernel | p90 | node-to-node TCP (Gbit/s), per round | median | × kernel | vCPUs busy (%) | vCPU per Gbit/s |",
);
console.log("|---|---|---:|---:|---:|---|---:|---:|---:|---:|");
for (const p of PATHS) {
  const v = p50s.get(p)!;
  const m = median(v);
  const t = tcp.get(p)!;
  const g = median(t.map((x) => x.gbps));
  const busy = median(t.map((x) => x.busy));
  const perGbit = median(t.map((x) => ((x.busy / 100) * cpus().length) / x.gbps));
  const tcpCols = t.length
    ? `${fmt(
        t.map((x) => x.gbps),
        2,
      )} | ${g.toFixed(2)} | ${(g / kt).toFixed(2)} | ${busy.toFixed(0)} | ${perGbit.toFixed(3)}`
    : "– | – | – | – | –";
  console.log(
    `| ${p} | ${fmt(v, 3)} | ${m.toFixed(3)} | ${(m / k).toFixed(2)} | ${median(p90s.get(p)!).toFixed(3)} | ${tcpCols} |`,
  );
}
console.log(
  `\nPing: ${count} pings ${values.interval} s apart per path and round, after a ${values.warm}-ping flood, ${from.name} -> ${to.name}. ` +
    `TCP: iperf3, one stream, ${tcpSeconds} s, node ${a.name} -> ${b.name}. ${cpus().length} vCPUs (${cpus()[0]?.model.trim()}), Linux ${release()}, Node ${process.version}.`,
);
