// How low can a user-space hop go? Ping RTT between two pods of a running `vxtun lab`
// over three overlays that share everything but the hop: the kernel's vxlan, a minimal
// C relay (bench/floor/relay.c: TUN + UDP socket, blocking epoll, one packet per
// syscall, no lookups) and vxtun itself. The pods, veths, bridges and underlay switch
// are the same; only the route for the peer's pod subnet on each node moves between
// the kernel's vxlan device, the relay's TUN and vxtun's TUN. Rounds alternate the
// paths so that the machine's drift falls on all of them.
//   vxtun lab up --nodes 2 --pods 1
//   node --import tsx bench/ping-floor.ts [--lab lab] [--rounds 3] [--count 200]
//        [--interval 0.02] [--warm 2000]
// Root only; everything runs inside the lab's namespaces, and what it adds (the relay's
// TUN, a vxlan device, routes, neighbour and FDB entries) is removed at the end.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { addFlannelPeer, addKernelVxlan } from "../src/lab/kernel-vxlan.js";
import { type LabNode, readLab } from "../src/lab/lab.js";

const { values } = parseArgs({
  options: {
    lab: { type: "string", default: "lab" },
    rounds: { type: "string", default: "3" },
    count: { type: "string", default: "200" },
    interval: { type: "string", default: "0.02" },
    warm: { type: "string", default: "2000" },
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
const median = (v: number[]) =>
  pct(
    [...v].sort((x, y) => x - y),
    0.5,
  );

const p50s = new Map<Path, number[]>(PATHS.map((p) => [p, []]));
const p90s = new Map<Path, number[]>(PATHS.map((p) => [p, []]));
const count = Number(values.count);
try {
  await setup();
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const path of PATHS) {
      for (const s of sides) route(s, path);
      sh("ip", ["netns", "exec", from.ns, "ping", "-f", "-q", "-c", values.warm, "-W", "1", to.ip]);
      const rtts = pings(count, values.interval);
      const moved = sides.filter(
        (s) =>
          routeDev(s) !== (path === "vxtun" ? s.tun : path === "c-relay" ? RELAY_DEV : KVX_DEV),
      );
      if (moved.length > 0) throw new Error(`round ${round} ${path}: a route moved during the run`);
      if (rtts.length < count * 0.9)
        throw new Error(`round ${round} ${path}: ${rtts.length}/${count} replies`);
      p50s.get(path)!.push(pct(rtts, 0.5));
      p90s.get(path)!.push(pct(rtts, 0.9));
      console.error(`round ${round} ${path}: p50 ${pct(rtts, 0.5)} ms, p90 ${pct(rtts, 0.9)} ms`);
    }
  }
} finally {
  cleanup();
}

const k = median(p50s.get("kernel-vxlan")!);
console.log(`| path | ping p50 (ms), per round | median p50 | × kernel | median p90 |`);
console.log(`|---|---|---:|---:|---:|`);
for (const p of PATHS) {
  const v = p50s.get(p)!;
  const m = median(v);
  console.log(
    `| ${p} | ${v.map((x) => x.toFixed(3)).join(", ")} | ${m.toFixed(3)} | ${(m / k).toFixed(2)} | ${median(p90s.get(p)!).toFixed(3)} |`,
  );
}
console.log(
  `\n${count} pings ${values.interval} s apart per path and round after a ${values.warm}-ping flood; ${from.name} -> ${to.name}.`,
);
