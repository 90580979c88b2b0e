// Fast-path diagnostics: two vxtun vxlan nodes (or a vxtun node and a kernel vxlan
// peer), one iperf3 run each way and a ping, then both instances' counters. Options:
//   --seconds S   iperf3 duration (default 5)
//   --offload auto|off   (VXTUN_IO_OFFLOAD for the children)
//   --peer vxtun|kernel  what node 2 runs (default vxtun)
//   --reverse     also measure node 2 -> node 1
//   --streams N   parallel iperf3 streams (default 1)
//   --queues N|auto   forwarding queues per node (io.queues, default auto)
//   --ipv6        IPv6 pods (fd00:0:0:<i>::1), routed as flannel-v6.1 over the IPv4 underlay
//   --underlay ipv4|ipv6   the nodes' underlay (ipv6: VXLAN over 2001:2::/64, MTU - 70)
//   --shrink-underlay MTU   lower node 1's underlay MTU under the running dataplane
//                 first (PMTU: EMSGSIZE lowers the route MTU, TSO segments then
//                 get ICMP frag-needed until TCP's MSS fits)
// Run as root under the lab lock: flock /tmp/vxtun-netns.lock node --import tsx bench/fastpath.ts
// GC: VXTUN_NODE_FLAGS="--trace-gc" makes the children print every GC; we report the
// longest pause seen in their output.
import { parseArgs } from "node:util";
import { cpuSeconds, iperf, pingRtt } from "../src/bench/traffic.js";
import { addFlannelPeer, addKernelVxlan } from "../src/lab/kernel-vxlan.js";
import { NetnsLab } from "../src/lab/netns.js";
import { buildUnderlay } from "../src/lab/underlay.js";
import { startVxtun, type VxtunProc } from "../src/lab/vxtun-process.js";
import { runOk } from "../src/system/exec.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    offload: { type: "string", default: "auto" },
    peer: { type: "string", default: "vxtun" },
    reverse: { type: "boolean", default: false },
    streams: { type: "string", default: "1" },
    queues: { type: "string", default: "auto" },
    "shrink-underlay": { type: "string", default: "" },
    ipv6: { type: "boolean", default: false },
    underlay: { type: "string", default: "ipv4" },
  },
});
process.env.VXTUN_IO_OFFLOAD = values.offload;
const seconds = Number(values.seconds);
const MAC = (i: number) => `02:00:00:00:0${i}:01`;

const lab = await NetnsLab.create();
const procs: VxtunProc[] = [];
const started: number[] = [];
try {
  const family = values.underlay === "ipv6" ? "ipv6" : "ipv4";
  const nodes = (await buildUnderlay(lab, 2, 1500, family)).nodes;
  for (const [i, n] of nodes.entries()) {
    const j = 1 - i;
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    if (i === 1 && values.peer === "kernel") {
      const dev = await addKernelVxlan({
        ns: n.ns,
        local: n.address,
        underlayDev: n.dev,
        vtepIp: `10.244.${i + 1}.0`,
        vtepMac: MAC(i + 1),
        finishChecksums: true,
        mtu: family === "ipv6" ? 1430 : 1450,
      });
      await addFlannelPeer(n.ns, dev, {
        subnet: `10.244.${j + 1}.0/24`,
        vtepIp: `10.244.${j + 1}.0`,
        vtepMac: MAC(j + 1),
        publicIp: nodes[j].address,
      });
      continue;
    }
    started.push(Date.now());
    procs.push(
      await startVxtun(lab, n.ns, {
        name: n.name,
        mode: "vxlan",
        io: { queues: values.queues === "auto" ? "auto" : Number(values.queues) },
        local: { address: n.address },
        device: { name: "vxtun0", address: `10.244.${i + 1}.0/32`, vtepMac: MAC(i + 1) },
        peers: [{ address: nodes[j].address, subnet: `10.244.${j + 1}.0/24`, vtepMac: MAC(j + 1) }],
      }),
    );
  }
  const [a, b] = nodes;
  const v6 = values.ipv6;
  if (v6) await ipv6Pods();
  const link = {
    clientNs: a.ns,
    clientIp: v6 ? "fd00:0:0:1::1" : "10.244.1.1",
    serverNs: b.ns,
    serverIp: v6 ? "fd00:0:0:2::1" : "10.244.2.1",
    seconds,
    streams: Number(values.streams),
  };
  /**
   * IPv6 pods on loopback and their routes, as flanneld programs flannel-v6.1 (VTEP
   * address fd00:0:0:<i>::, permanent neighbour, onlink route), through vxtun's CLI on
   * a vxtun node. The lab turns IPv6 off in its nodes: back on for lo and the device.
   */
  async function ipv6Pods(): Promise<void> {
    for (const [i, n] of nodes.entries()) {
      const j = 1 - i;
      const kernel = i === 1 && values.peer === "kernel";
      const dev = kernel ? "flannel.1" : "vxtun0";
      for (const d of ["lo", dev]) {
        await lab.execOk(n.ns, ["sysctl", "-qw", `net/ipv6/conf/${d}/disable_ipv6=0`]);
      }
      await runOk(["ip", "-n", n.ns, "-6", "addr", "add", `fd00:0:0:${i + 1}::1/128`, "dev", "lo"]);
      const [net, gw] = [`fd00:0:0:${j + 1}::/64`, `fd00:0:0:${j + 1}::`];
      if (kernel) {
        const ip6 = (...args: string[]) => runOk(["ip", "-n", n.ns, "-6", ...args]);
        await ip6("addr", "add", `fd00:0:0:${i + 1}::/128`, "dev", dev, "nodad");
        await ip6("neigh", "replace", gw, "lladdr", MAC(j + 1), "dev", dev, "nud", "permanent");
        await ip6("route", "replace", net, "via", gw, "dev", dev, "onlink");
      } else {
        await procs[i].cli(["neigh", "add", gw, "lladdr", MAC(j + 1)]);
        await procs[i].cli(["route", "add", net, "via", gw, "onlink"]);
      }
    }
  }
  const info = await procs[0].call("info");
  console.log("offload:", JSON.stringify((info as { offload: unknown }).offload));
  await pingRtt(lab, a.ns, link.clientIp, link.serverIp, 3, 0.1);
  if (values["shrink-underlay"]) {
    const mtu = Number(values["shrink-underlay"]);
    await runOk(["ip", "-n", a.ns, "link", "set", a.dev, "mtu", String(mtu)]);
    // One DF packet that no longer fits: EMSGSIZE on the raw path lowers the route MTU.
    await lab.exec(a.ns, [
      "ping",
      "-c",
      "1",
      "-W",
      "1",
      "-M",
      "do",
      "-s",
      String(mtu - 28),
      "-I",
      link.clientIp,
      link.serverIp,
    ]);
    console.log((await procs[0].cli(["route", "show"])).stdout.trim());
  }
  const cpu0 = procs.map((p) => cpuSeconds(p.child.pid));
  const iperfFrom = Date.now();
  const fwd = await iperf(lab, link);
  const iperfTo = Date.now();
  const cpu1 = procs.map((p) => cpuSeconds(p.child.pid));
  console.log(
    `tcp 1->2: ${fwd.ok ? fwd.gbps.toFixed(2) : fwd.error} Gbit/s; cpu s: ${cpu1.map((c, i) => (c - cpu0[i]).toFixed(2)).join(", ")}`,
  );
  if (values.reverse) {
    const rev = await iperf(lab, { ...link, reverse: true });
    console.log(`tcp 2->1: ${rev.ok ? rev.gbps.toFixed(2) : rev.error} Gbit/s`);
  }
  const ping = await pingRtt(lab, a.ns, link.clientIp, link.serverIp, 20, 0.02);
  console.log(`ping p50 ${ping.p50} ms p99 ${ping.p99} ms (${ping.received}/${ping.sent})`);
  for (const n of nodes) {
    const l = await lab.exec(n.ns, ["ip", "-s", "-s", "link", "show", "vxtun0"]);
    const drops = l.stdout.replace(/\s+/g, " ");
    const ns = await lab.exec(n.ns, [
      "nstat",
      "-az",
      "UdpRcvbufErrors",
      "UdpSndbufErrors",
      "TcpRetransSegs",
      "TcpExtTCPLostRetransmit",
      "UdpInErrors",
    ]);
    console.log(`${n.name}: ${drops.slice(drops.indexOf("RX:"))}`);
    console.log(
      `${n.name}: ${ns.stdout
        .split("\n")
        .filter((x) => /^\w/.test(x) && !x.startsWith("#"))
        .map((x) => x.split(/\s+/).slice(0, 2).join("="))
        .join(" ")}`,
    );
  }
  for (const [i, p] of procs.entries()) {
    const s = (await p.call("stats")) as {
      counters: Record<string, number>;
      drops: Record<string, number>;
    };
    const nz = (o: Record<string, number>) =>
      Object.entries(o)
        .filter(([, v]) => v)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
    console.log(`node ${i + 1} counters: ${nz(s.counters)}`);
    console.log(`node ${i + 1} drops: ${nz(s.drops) || "(none)"}`);
    // --trace-gc lines: "[pid:isolate]  <ms since isolate start> ms: Scavenge ... <pause> / <x> ms".
    // Main isolate only (the first one seen; tsx's loader runs a second), and only
    // events inside the iperf3 window (process start ~= when we launched it).
    const events = [
      ...p
        .output()
        .matchAll(
          /\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: (Scavenge|Mark-Compact|Mark-sweep)[^\n]*?([\d.]+) \/ [\d.]+ ms/g,
        ),
    ];
    const main = events[0]?.[1];
    const lo = iperfFrom - started[i];
    const hi = iperfTo - started[i];
    const inRun = events
      .filter((m) => m[1] === main && Number(m[2]) >= lo && Number(m[2]) <= hi)
      .map((m) => Number(m[4]));
    if (events.length) {
      console.log(
        `node ${i + 1} GC during iperf3 (${lo}-${hi} ms): ${inRun.length} events, max pause ${inRun.length ? Math.max(...inRun) : 0} ms (all: ${events.length}, max ${Math.max(...events.map((m) => Number(m[4])))} ms)`,
      );
    }
    if (process.env.FASTPATH_GC_LINES) {
      for (const l of p.output().split("\n"))
        if (/Scavenge|Mark-/.test(l)) console.log(`  ${l.trim()}`);
    }
  }
  for (const p of procs) await p.stop();
} finally {
  await lab.cleanup();
}
