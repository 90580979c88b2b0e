// IPv6 pods over the IPv4 underlay in the L3 modes. `vxlan`: two vxtun nodes, then
// vxtun against the kernel's vxlan programmed as flanneld programs flannel-v6.1
// (permanent IPv6 neighbour for the remote VTEP address, FDB entry to the node, onlink
// route), but over IPv4. `ipip`: 6in4 (protocol 41) between two vxtun nodes and against
// the kernel's `sit`. ping6 and iperf3 TCP both ways without checksum errors, and a
// packet too big for the tunnel answered with an ICMPv6 Packet Too Big with its MTU.
// The TUNs get MTU 1500, above the 1450 the tunnel carries, so that the kernel hands
// vxtun the too-big packets (as in pmtu.root.test.ts).
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { kernelFlannelNode } from "../fixtures/kernel-peer.js";
import { iperfTcp, podPing } from "../fixtures/traffic.js";
import { startVxtun, type VxtunProc } from "../fixtures/vxtun.js";
import { vxtunPair } from "../fixtures/vxtun-pair.js";

const mac = (i: number) => `02:00:00:00:0${i + 1}:01`;
/** Node i's IPv6 pod subnet, its VTEP address (the subnet's first, as flannel) and pod. */
const net6 = (i: number) => `fd00:0:0:${i + 1}::/64`;
const vtep6 = (i: number) => `fd00:0:0:${i + 1}::`;
const pod6 = (i: number) => `fd00:0:0:${i + 1}::1`;

/** The assertions used here (tap's Test). */
type Asserts = {
  ok(v: unknown, msg: string): void;
  equal(a: unknown, b: unknown, msg: string): void;
  not(a: unknown, b: unknown, msg: string): void;
  same(a: unknown, b: unknown, msg: string): void;
  match(a: unknown, p: unknown, msg: string): void;
};

type Counters = { counters: Record<string, number>; drops: Record<string, number> };

/** The checksum error counters nstat keeps for what crosses the tunnel here. */
const CSUM = ["Udp6InCsumErrors", "TcpInCsumErrors", "Icmp6InCsumErrors"];

async function csumErrors6(lab: NetnsLab, ns: string): Promise<Record<string, number>> {
  const out = await lab.execOk(ns, ["nstat", "-asz", ...CSUM]);
  const r: Record<string, number> = {};
  for (const k of CSUM) r[k] = Number(new RegExp(`^${k}\\s+(\\d+)`, "m").exec(out)?.[1] ?? 0);
  return r;
}

/**
 * IPv6 back on for `devs` (the lab turns it off in its IPv4 nodes; the underlay stays
 * without it) and a pod address on loopback (no DAD there).
 */
async function addPod6(lab: NetnsLab, ns: string, i: number, devs: string[]): Promise<void> {
  for (const d of ["lo", ...devs]) {
    await lab.execOk(ns, ["sysctl", "-qw", `net/ipv6/conf/${d}/disable_ipv6=0`]);
  }
  await runOk(["ip", "-n", ns, "-6", "addr", "add", `${pod6(i)}/128`, "dev", "lo"]);
}

/** Node i's vxtun learns node j's IPv6 subnet through the CLI, as `ip -6` would. */
async function route6(t: Asserts, vx: VxtunProc, j: number): Promise<void> {
  const n = await vx.cli(["neigh", "add", vtep6(j), "lladdr", mac(j)]);
  t.equal(n.code, 0, `vxtun neigh add ${vtep6(j)} lladdr ${mac(j)} ${n.stderr}`);
  const r = await vx.cli(["route", "add", net6(j), "via", vtep6(j), "onlink"]);
  t.equal(r.code, 0, `vxtun route add ${net6(j)} via ${vtep6(j)} onlink ${r.stderr}`);
}

/**
 * Received IPv6 TCP went to the TUN merged (TCPv6 GSO writes, the TUN took TSO6) and
 * every merged segment's checksum held; the kernel took the writes (nstat, above).
 */
function merged6(t: Asserts, c: Record<string, number>): void {
  t.ok(
    c.coalesced_writes > 0 && c.coalesced_segments > 2 * c.coalesced_writes,
    `IPv6 TCP merged into TCPv6 writes: ${c.coalesced_writes} carrying ${c.coalesced_segments} segments`,
  );
  t.equal(c.rx_inner_csum_bad, 0, "no bad inner checksum");
}

/** ping6 and iperf3 TCP both ways between pods 0 (node a) and 1 (node b). */
async function trafficBothWays(t: Asserts, lab: NetnsLab, a: string, b: string) {
  const before = await Promise.all([a, b].map((ns) => csumErrors6(lab, ns)));
  const ab = await podPing(lab, a, pod6(0), pod6(1));
  t.equal(ab.code, 0, `ping6 A -> B\n${ab.stdout}${ab.stderr}`);
  const ba = await podPing(lab, b, pod6(1), pod6(0));
  t.equal(ba.code, 0, `ping6 B -> A\n${ba.stdout}${ba.stderr}`);
  const link = { clientNs: a, clientIp: pod6(0), serverNs: b, serverIp: pod6(1), seconds: 2 };
  const fwd = await iperfTcp(lab, link);
  t.ok(fwd.ok, `iperf3 TCP A -> B: ${fwd.gbps.toFixed(2)} Gbit/s ${fwd.error ?? ""}`);
  const rev = await iperfTcp(lab, { ...link, reverse: true });
  t.ok(rev.ok, `iperf3 TCP B -> A: ${rev.gbps.toFixed(2)} Gbit/s ${rev.error ?? ""}`);
  const after = await Promise.all([a, b].map((ns) => csumErrors6(lab, ns)));
  t.same(after, before, `no new ${CSUM.join("/")} on either node (nstat)`);
}

/** A ping6 one byte over the tunnel MTU gets a Packet Too Big announcing it. */
async function tooBig(t: Asserts, lab: NetnsLab, ns: string, vx: VxtunProc, mtu: number) {
  // IPv6 (40) + ICMPv6 (8) + payload = mtu + 1
  const over = String(mtu - 48 + 1);
  const r = await podPing(lab, ns, pod6(0), pod6(1), { args: ["-M", "do", "-s", over] });
  t.not(r.code, 0, "the too-big ping6 gets no echo reply");
  t.match(
    r.stdout + r.stderr,
    new RegExp(`mtu ?[=:] ?${mtu}\\b`),
    `ping6 reports the tunnel MTU (${mtu}) from the PTB`,
  );
  const get = await lab.execOk(ns, ["ip", "-6", "route", "get", pod6(1), "from", pod6(0)]);
  t.match(get, new RegExp(`mtu ${mtu}\\b`), `the kernel learned the path MTU: ${get.trim()}`);
  const s = (await vx.call("stats")) as Counters;
  t.ok(s.counters.icmp6_too_big_sent >= 1, "counted: icmp6_too_big_sent");
  t.ok(s.drops.too_big >= 1, "counted: too_big drop");
  const fits = await podPing(lab, ns, pod6(0), pod6(1), {
    count: 1,
    args: ["-M", "do", "-s", String(mtu - 48)],
  });
  t.equal(fits.code, 0, "a packet of exactly the tunnel MTU crosses");
}

t.test("vxlan mode: IPv6 pods between two vxtun nodes", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes, procs } = await vxtunPair(lab, () => ({ device: { mtu: 1500 } }));
  for (const p of procs) t.teardown(p.stop);
  for (const [i, n] of nodes.entries()) {
    await addPod6(lab, n.ns, i, ["vxtun0"]);
    await route6(t, procs[i], 1 - i);
  }
  const shown = (await procs[0].cli(["route", "show"])).stdout;
  t.match(shown, `${net6(1)} via ${vtep6(1)} dev vxtun0 onlink`, "route show lists the route");
  await trafficBothWays(t, lab, nodes[0].ns, nodes[1].ns);
  const c = ((await procs[0].call("stats")) as Counters).counters;
  t.ok(c.encap_packets > 100 && c.decap_packets > 100, "vxtun carried the IPv6 traffic");
  merged6(t, c);
  await tooBig(t, lab, nodes[0].ns, procs[0], 1450);

  // The underlay shrinks under the running dataplane: EMSGSIZE lowers the IPv6 route's
  // MTU as it does the IPv4 one's, and the next sender hears it.
  const a = nodes[0];
  await runOk(["ip", "-n", a.ns, "link", "set", a.dev, "mtu", "1400"]);
  await podPing(lab, a.ns, pod6(0), pod6(1), { count: 1, args: ["-M", "do", "-s", "1372"] });
  const after = (await procs[0].cli(["route", "show"])).stdout;
  t.match(after, `${net6(1)} via ${vtep6(1)} dev vxtun0 onlink mtu 1350`, "IPv6 route MTU lowered");
  const r = await podPing(lab, a.ns, pod6(0), pod6(1), { args: ["-M", "do", "-s", "1372"] });
  t.match(r.stdout + r.stderr, /mtu ?[=:] ?1350\b/, "the next IPv6 sender hears mtu 1350");
});

t.test("vxlan mode: vxtun <-> kernel vxlan programmed as flannel-v6.1", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const [a, b] = (await buildUnderlay(lab, 2)).nodes;
  // Node B: the kernel. flannel's IPv4 programming (the FDB entry to A is shared) plus
  // what it does for an IPv6 lease: VTEP address on the device, permanent neighbour,
  // onlink route via A's VTEP address.
  const dev = await kernelFlannelNode(b, a);
  await addPod6(lab, b.ns, 1, [dev]);
  const ipB = (...args: string[]) => runOk(["ip", "-n", b.ns, "-6", ...args]);
  await ipB("addr", "add", `${vtep6(1)}/128`, "dev", dev, "nodad");
  await ipB("neigh", "replace", vtep6(0), "lladdr", mac(0), "dev", dev, "nud", "permanent");
  await ipB("route", "replace", net6(0), "via", vtep6(0), "dev", dev, "onlink");
  // Node A: vxtun, its IPv4 peer for the FDB entry, the IPv6 neighbour and route by CLI.
  const vx = await startVxtun(lab, a.ns, {
    name: "a",
    mode: "vxlan",
    local: { address: a.address },
    device: { name: "vxtun0", address: "10.244.1.0/32", vtepMac: mac(0), mtu: 1500 },
    peers: [{ address: b.address, subnet: "10.244.2.0/24", vtepMac: mac(1) }],
  });
  t.teardown(vx.stop);
  await addPod6(lab, a.ns, 0, ["vxtun0"]);
  await route6(t, vx, 1);
  await trafficBothWays(t, lab, a.ns, b.ns);
  await tooBig(t, lab, a.ns, vx, 1450);
  const s = (await vx.call("stats")) as Counters;
  t.equal(s.drops.unsupported_ethertype ?? 0, 0, "nothing the kernel sent was refused");
  merged6(t, s.counters);
  if (t.passing()) return;
  t.comment(vx.output());
});

t.test("ipip mode: IPv6 pods as 6in4 between two vxtun nodes", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes, procs } = await vxtunPair(lab, () => ({ device: { mtu: 1500 } }), "ipip");
  for (const p of procs) t.teardown(p.stop);
  for (const [i, n] of nodes.entries()) {
    await addPod6(lab, n.ns, i, ["vxtun0"]);
    const j = 1 - i;
    const r = await procs[i].cli(["route", "add", net6(j), "remote", nodes[j].address]);
    t.equal(r.code, 0, `vxtun route add ${net6(j)} remote ${nodes[j].address} ${r.stderr}`);
  }
  await trafficBothWays(t, lab, nodes[0].ns, nodes[1].ns);
  merged6(t, ((await procs[0].call("stats")) as Counters).counters);
  await tooBig(t, lab, nodes[0].ns, procs[0], 1480);
});

t.test("ipip mode: vxtun <-> the kernel's sit (6in4)", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const [a, b] = (await buildUnderlay(lab, 2)).nodes;
  // Node B: a point-to-point sit device to A, a route for A's IPv6 pods into it.
  const sit = "sit6a";
  const ipB = (...args: string[]) => runOk(["ip", "-n", b.ns, ...args]);
  const add = await lab.exec(b.ns, [
    ...["ip", "link", "add", sit, "type", "sit"],
    ...["local", b.address, "remote", a.address, "ttl", "64"],
  ]);
  if (add.code !== 0 && /Unknown device type/.test(add.stderr)) {
    t.plan(0, `this kernel has no sit device (CONFIG_IPV6_SIT): ${add.stderr.trim()}`);
    return;
  }
  t.equal(add.code, 0, `sit device on node B ${add.stderr}`);
  await addPod6(lab, b.ns, 1, [sit]);
  await ipB("link", "set", sit, "up");
  await ipB("-6", "route", "replace", net6(0), "dev", sit);
  const vx = await startVxtun(lab, a.ns, {
    name: "a",
    mode: "ipip",
    local: { address: a.address },
    device: { name: "vxtun0", address: "10.244.1.0/32", mtu: 1500 },
    peers: [{ address: b.address, subnet: "10.244.2.0/24" }],
  });
  t.teardown(vx.stop);
  await addPod6(lab, a.ns, 0, ["vxtun0"]);
  const r = await vx.cli(["route", "add", net6(1), "remote", b.address]);
  t.equal(r.code, 0, `vxtun route add ${net6(1)} remote ${b.address} ${r.stderr}`);
  await trafficBothWays(t, lab, a.ns, b.ns);
  await tooBig(t, lab, a.ns, vx, 1480);
  const s = (await vx.call("stats")) as Counters;
  t.equal(s.drops.ipv4_bad_protocol ?? 0, 0, "every 6in4 packet from sit was taken");
  if (t.passing()) return;
  t.comment(vx.output());
});
