// Where a ping's round trip goes, hop by hop, in a running `vxtun lab`: tcpdump
// timestamps (kernel receive/transmit times) on both nodes' overlay device and underlay
// interface, matched by ICMP sequence number. A hop "dev -> wire" on the sending node is
// vxtun's TX path (wake-up, read, encapsulate, send); "wire -> dev" is its RX path.
//   vxtun lab up --nodes 2 --pods 1
//   node --import tsx bench/ping-hops.ts [--lab lab] [--count 50] [--interval 0.02]
//        [--warm 2000]   (a flood ping first, so that V8 has compiled the forwarder)
// Root only; everything runs inside the lab's namespaces.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { type LabNode, readLab } from "../src/lab/lab.js";

const { values } = parseArgs({
  options: {
    lab: { type: "string", default: "lab" },
    count: { type: "string", default: "50" },
    interval: { type: "string", default: "0.02" },
    warm: { type: "string", default: "2000" },
  },
});
const lab = readLab(values.lab);
const count = Number(values.count);
const [from, to] = [lab.pods[0], lab.pods.find((p) => p.node !== lab.pods[0]?.node)];
if (!from || !to)
  throw new Error("the lab needs pods on two nodes: vxtun lab up --nodes 2 --pods 1");

const ipJson = (ns: string, ...args: string[]) =>
  JSON.parse(execFileSync("ip", ["-n", ns, "-j", ...args], { encoding: "utf8" }));

/** The node's TUN/TAP and the interface holding its underlay address. */
function points(n: LabNode): { name: string; ns: string; dev: string }[] {
  const links = ipJson(n.ns, "-d", "link", "show") as {
    ifname: string;
    linkinfo?: { info_kind?: string };
  }[];
  const dev = links.find((l) => l.linkinfo?.info_kind === "tun")?.ifname;
  const addrs = ipJson(n.ns, "addr", "show") as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  const wire = addrs.find((a) => a.addr_info.some((i) => i.local === n.address))?.ifname;
  if (!dev || !wire) throw new Error(`${n.name}: no TUN/TAP or underlay interface found`);
  return [
    { name: `${n.name} ${dev}`, ns: n.ns, dev },
    { name: `${n.name} ${wire}`, ns: n.ns, dev: wire },
  ];
}

const nodeOf = (name: string) => lab.nodes.find((n) => n.name === name)!;
const taps = [...points(nodeOf(from.node)), ...points(nodeOf(to.node))];
const netns = (ns: string, cmd: string[]) => ["netns", "exec", ns, ...cmd];

if (Number(values.warm) > 0) {
  execFileSync("ip", netns(from.ns, ["ping", "-f", "-q", "-c", values.warm, to.ip]));
}

interface Event {
  t: number;
  point: string;
  kind: "req" | "rep";
  seq: number;
}
const events: Event[] = [];
const dumps: ChildProcess[] = taps.map((p) => {
  // -tt: epoch timestamps (the same clock in every namespace); --immediate-mode: no
  // buffering delay in what we record (the timestamp comes from the kernel either way).
  const c = spawn(
    "ip",
    netns(p.ns, [
      "tcpdump",
      "-i",
      p.dev,
      "-nn",
      "-tt",
      "-l",
      "--immediate-mode",
      "icmp or udp or proto 4",
    ]),
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  let t = 0;
  let rest = "";
  c.stdout!.setEncoding("utf8");
  c.stdout!.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) {
      // A VXLAN packet's inner ICMP is printed on the line after its timestamp.
      if (/^\d+\.\d+ /.test(line)) t = Number(line.split(" ")[0]);
      const m = /echo (request|reply), id \d+, seq (\d+)/.exec(line);
      if (m && t) {
        events.push({
          t,
          point: p.name,
          kind: m[1] === "request" ? "req" : "rep",
          seq: Number(m[2]),
        });
      }
    }
  });
  return c;
});
await new Promise((r) => setTimeout(r, 1500));
let rtt = "";
try {
  const out = execFileSync(
    "ip",
    netns(from.ns, ["ping", "-c", String(count), "-i", values.interval, to.ip]),
    { encoding: "utf8" },
  );
  rtt = out.trim().split("\n").at(-1) ?? "";
} finally {
  await new Promise((r) => setTimeout(r, 500));
  for (const d of dumps) d.kill("SIGINT");
}

// Per sequence number: the points in time order; each consecutive pair is a hop.
const bySeq = new Map<number, Event[]>();
for (const e of events) bySeq.set(e.seq, [...(bySeq.get(e.seq) ?? []), e]);
const hops = new Map<string, number[]>();
for (const es of bySeq.values()) {
  if (es.length !== 2 * taps.length) continue; // a packet some capture missed
  es.sort((a, b) => a.t - b.t);
  for (let i = 1; i < es.length; i++) {
    const key = `${es[i - 1].point} ${es[i - 1].kind} -> ${es[i].point} ${es[i].kind}`;
    hops.set(key, [...(hops.get(key) ?? []), (es[i].t - es[i - 1].t) * 1e6]);
  }
}
const q = (v: number[], f: number) => v[Math.min(v.length - 1, Math.floor(f * v.length))];
console.log(
  `${lab.mode} lab "${lab.name}": ${from.name} -> ${to.name}, ${count} pings ${values.interval} s apart`,
);
console.log(`ping: ${rtt}`);
console.log("hop (µs)                                              p50     min     p90");
for (const [k, v] of hops) {
  v.sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(0).padStart(7);
  console.log(`${k.padEnd(50)} ${f(q(v, 0.5))} ${f(v[0])} ${f(q(v, 0.9))}`);
}
