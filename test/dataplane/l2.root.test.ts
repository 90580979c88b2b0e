// vxlan-l2: vxtun's TAP is a bridge port. Acceptance 2 (a kernel vxlan bridge port as
// peer: ARP across, ping, learning and ageing) and acceptance 4 (three vxtun nodes:
// head-end replication of broadcast; malformed and unknown-VNI packets at the UDP port
// dropped and counted while traffic keeps flowing).
import t from "tap";
import { addKernelVxlan } from "../../src/lab/kernel-vxlan.js";
import { NetnsLab as Lab, type NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay, type UnderlayNode } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { csumErrors, iperfTcp, tcpBothWays, udpSegmentRun } from "../fixtures/traffic.js";
import { startVxtun } from "../fixtures/vxtun.js";

/** A bridge br0 with the node's overlay address 10.244.0.<i>/24: the "pod side". */
async function bridge(n: UnderlayNode, i: number): Promise<void> {
  await runOk(["ip", "-n", n.ns, "link", "add", "br0", "type", "bridge"]);
  await runOk(["ip", "-n", n.ns, "link", "set", "br0", "mtu", "1450", "up"]);
  await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.0.${i}/24`, "dev", "br0"]);
}

function l2Config(n: UnderlayNode, peers: UnderlayNode[], extra: Record<string, unknown> = {}) {
  return {
    name: n.name,
    mode: "vxlan-l2",
    local: { address: n.address },
    device: { name: "vxtap0", bridge: "br0" },
    peers: peers.map((p) => ({ address: p.address })),
    ...extra,
  };
}

const ping = (lab: NetnsLab, ns: string, dst: string, extra: string[] = []) =>
  lab.exec(ns, ["ping", "-c", "2", "-i", "0.2", "-W", "2", ...extra, dst]);

/** Node A for vxtun, node B with a kernel vxlan bridge port flooding to A; both bridged. */
async function kernelBridgePeer(t: Parameters<typeof Lab.create>[0]) {
  const lab = await Lab.create(t);
  const [a, b] = (await buildUnderlay(lab, 2)).nodes;
  await bridge(a, 1);
  await bridge(b, 2);
  const dev = await addKernelVxlan({
    ns: b.ns,
    local: b.address,
    underlayDev: b.dev,
    vtepIp: "0.0.0.0",
    vtepMac: "02:00:00:00:02:01",
    bridge: "br0",
    learning: true,
  });
  await runOk([
    "bridge",
    "-n",
    b.ns,
    "fdb",
    "append",
    "00:00:00:00:00:00",
    "dev",
    dev,
    "dst",
    a.address,
  ]);
  return { lab, a, b };
}

t.test("vxtun vxlan-l2 <-> kernel vxlan bridge port", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, a, b } = await kernelBridgePeer(t);
  const vx = await startVxtun(lab, a.ns, l2Config(a, [b], { fdb: { ageingSeconds: 2 } }));
  t.teardown(vx.stop);

  const r = await ping(lab, a.ns, "10.244.0.2");
  t.equal(r.code, 0, `ARP resolves and ping crosses: ${r.stdout.split("\n").at(-2)}`);
  const neigh = await lab.execOk(a.ns, ["ip", "neigh", "show", "10.244.0.2"]);
  t.match(neigh, /lladdr/, "A learned B's bridge MAC through ARP over the tunnel");
  const bMac = JSON.parse(await lab.execOk(b.ns, ["ip", "-j", "link", "show", "br0"]))[0].address;
  const fdb = await vx.cli(["fdb", "show"]);
  t.match(
    fdb.stdout,
    new RegExp(`${bMac} dev vxtap0 dst ${b.address}`),
    "B's MAC was learned in vxtun's FDB",
  );
  t.match(
    fdb.stdout,
    /00:00:00:00:00:00 dev vxtap0 dst 198\.18\.0\.2 self permanent/,
    "flood entry shown",
  );
  // Once B stops sending (its ARP re-probe of A comes ~5 s after the ping), the learned
  // entry must disappear 2 s (the configured ageing time) later.
  let aged = false;
  for (let waited = 0; waited < 15_000 && !aged; waited += 500) {
    await new Promise((res) => setTimeout(res, 500));
    aged = !(await vx.cli(["fdb", "show"])).stdout.includes(bMac);
  }
  t.ok(aged, "the learned entry aged out");
  const flood = await vx.cli(["fdb", "show"]);
  t.match(
    flood.stdout,
    /00:00:00:00:00:00 dev vxtap0 dst 198\.18\.0\.2/,
    "static entries never age",
  );
});

t.test("vxlan-l2 fast path <-> kernel vxlan bridge port: TCP both ways", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, a, b } = await kernelBridgePeer(t);
  const vx = await startVxtun(lab, a.ns, l2Config(a, [b]));
  t.teardown(vx.stop);
  const info = (await vx.call("stats")) as { offload: { state: string } };
  t.equal(info.offload.state, "on", "the TAP runs with virtio-net headers and offloads");

  t.equal((await ping(lab, a.ns, "10.244.0.2")).code, 0, "ARP and ping cross first");
  await tcpBothWays(t, lab, {
    clientNs: a.ns,
    clientIp: "10.244.0.1",
    serverNs: b.ns,
    serverIp: "10.244.0.2",
  });

  const s = (await vx.call("stats")) as {
    counters: Record<string, number>;
    drops: Record<string, number>;
  };
  const c = s.counters;
  // A -> B: the bridge hands the TAP TSO super-frames, cut into MSS-sized segments.
  t.ok(c.tso_superpackets > 100, `super-frames read from the TAP: ${c.tso_superpackets}`);
  t.ok(
    c.tso_segments > 10 * c.tso_superpackets,
    `segments per super-frame: ${(c.tso_segments / c.tso_superpackets).toFixed(1)}`,
  );
  // B -> A: the kernel's segments, GRO-batched by the socket, written as GSO frames.
  t.ok(
    c.coalesced_writes > 100 && c.coalesced_segments > 5 * c.coalesced_writes,
    `coalesced frame writes: ${c.coalesced_writes} carrying ${c.coalesced_segments} segments`,
  );
  t.equal(c.rx_inner_csum_bad, 0, "every received segment's TCP checksum verified");
  t.same(
    Object.entries(s.drops).filter(([, n]) => n > 0),
    [],
    "nothing dropped",
  );

  // IPv6 across the same bridges: TSO6 super-frames from the TAP, cut by the same
  // segmenter (IPv6 payload length, pseudo-header checksum), and B's segments merged
  // into TCPv6 GSO writes; the kernel's TCP on both sides verifies them (nstat).
  t.ok(
    (info as unknown as { offload: { tunOffloads: string[] } }).offload.tunOffloads.includes(
      "tso6",
    ),
    "TSO6 asked of the TAP",
  );
  await enableV6(lab, a, b);
  const p6 = await ping(lab, a.ns, "fd00:244::2");
  t.equal(p6.code, 0, `neighbour discovery and ping6 cross: ${p6.stdout.split("\n").at(-2)}`);
  await tcpBothWays(t, lab, {
    clientNs: a.ns,
    clientIp: "fd00:244::1",
    serverNs: b.ns,
    serverIp: "fd00:244::2",
  });
  const s6 = (await vx.call("stats")) as typeof s;
  const d = (k: string) => s6.counters[k] - c[k];
  t.ok(
    d("tso_superpackets") > 100,
    `IPv6 super-frames read from the TAP: ${d("tso_superpackets")}`,
  );
  t.ok(
    d("tso_segments") > 10 * d("tso_superpackets"),
    `segments per IPv6 super-frame: ${(d("tso_segments") / d("tso_superpackets")).toFixed(1)}`,
  );
  t.ok(
    d("coalesced_writes") > 100 && d("coalesced_segments") > 5 * d("coalesced_writes"),
    `coalesced IPv6 frame writes: ${d("coalesced_writes")} carrying ${d("coalesced_segments")} segments`,
  );
  t.equal(s6.counters.rx_inner_csum_bad, 0, "every received IPv6 segment's checksum verified");
  t.same(
    Object.entries(s6.drops).filter(([, n]) => n > 0),
    [],
    "nothing dropped over IPv6 either",
  );
});

// A sender's IPv6 extension headers ride in front of TCP in every segment of a TSO6
// super-frame: hop-by-hop and destination options, set on the socket (sticky options),
// as stacks add them for router alerts, jumbograms or experiments. Both ends send
// 8 MiB with them (the client first, then the server back) and report SHA-256 digests.
const extPeer = (role: "client" | "server", opt: string) => `
import hashlib, socket
data = hashlib.sha256(b"vxtun").digest() * (8 * 1024 * 1024 // 32)
def opts(c):
    # Next header (the kernel fills it), length 0 (8 bytes), PadN carrying 4 zero bytes.
    c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_${opt}, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
def drain(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            return h.hexdigest(), n
        h.update(b)
        n += len(b)
if "${role}" == "server":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    opts(s)  # before accept: the connection inherits it (set later, Linux stalls the send)
    s.bind(("::", 5001))
    s.listen(1)
    s.settimeout(30)
    c, _ = s.accept()
    c.settimeout(20)
    got = drain(c)
    c.sendall(data)
    c.close()
else:
    c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    opts(c)
    c.settimeout(20)
    c.connect(("fd00:244::2", 5001))
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = drain(c)
print(hashlib.sha256(data).hexdigest(), *got)
`;

t.test("vxlan-l2 fast path: IPv6 TCP with extension headers crosses intact", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, a, b } = await kernelBridgePeer(t);
  const vx = await startVxtun(lab, a.ns, l2Config(a, [b]));
  t.teardown(vx.stop);
  await enableV6(lab, a, b);
  t.equal((await ping(lab, a.ns, "fd00:244::2")).code, 0, "ping6 crosses first");
  const stats = async () =>
    (await vx.call("stats")) as { counters: Record<string, number>; drops: Record<string, number> };
  const csum = async () => [await csumErrors(lab, a.ns), await csumErrors(lab, b.ns)];
  const csum0 = await csum();
  for (const opt of ["DSTOPTS", "HOPOPTS"]) {
    const before = (await stats()).counters;
    const server = lab.exec(b.ns, ["/usr/bin/python3", "-c", extPeer("server", opt)]);
    await new Promise((res) => setTimeout(res, 300));
    const client = await lab.exec(a.ns, ["/usr/bin/python3", "-c", extPeer("client", opt)]);
    const srv = await server;
    const last = (r: typeof client) => r.stderr.trim().split("\n").at(-1) ?? "";
    t.equal(client.code, 0, `${opt}: the client finished ${last(client)}`);
    t.equal(srv.code, 0, `${opt}: the server finished ${last(srv)}`);
    const [want, toB, nB] = srv.stdout.trim().split(/\s+/);
    const [, toA, nA] = client.stdout.trim().split(/\s+/);
    t.ok(toB === want && Number(nB) === 8 << 20, `${opt}: A -> B: the same 8 MiB arrived`);
    t.ok(toA === want && Number(nA) === 8 << 20, `${opt}: B -> A: the same 8 MiB arrived`);
    const s = await stats();
    const d = (k: string) => s.counters[k] - before[k];
    t.ok(d("tso_superpackets") > 10, `${opt}: super-frames cut: ${d("tso_superpackets")}`);
    t.same(
      Object.entries(s.drops).filter(([, k]) => k > 0),
      [],
      `${opt}: nothing dropped`,
    );
  }
  t.same(await csum(), csum0, "no new TCP/UDP checksum errors on either node (nstat)");
});

t.test(
  "vxlan-l2: UDP_SEGMENT runs, IPv4 and IPv6, reach a kernel peer as the sender's datagrams, and the peer's come back merged",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, a, b } = await kernelBridgePeer(t);
    const vx = await startVxtun(lab, a.ns, l2Config(a, [b]));
    t.teardown(vx.stop);
    const info = (await vx.call("stats")) as { offload: { tunOffloads: string[] } };
    if (!info.offload.tunOffloads.includes("uso4")) {
      t.plan(0, "this kernel's TAP does not take USO4|USO6");
      return;
    }
    await enableV6(lab, a, b);
    let before = {
      uso_superpackets: 0,
      uso_segments: 0,
      coalesced_udp_writes: 0,
      coalesced_udp_datagrams: 0,
    };
    for (const [c, s] of [
      ["10.244.0.1", "10.244.0.2"],
      ["fd00:244::1", "fd00:244::2"],
    ]) {
      t.equal((await ping(lab, a.ns, s)).code, 0, `${s} answers first (ARP / ND)`);
      const r = await udpSegmentRun(lab, {
        clientNs: a.ns,
        clientIp: c,
        serverNs: b.ns,
        serverIp: s,
      });
      t.ok(r.sent, `sent with UDP_SEGMENT ${r.stderr}`);
      t.equal(r.received, 200, `${s}: ${r.received} datagrams received`);
      t.equal(r.intact, 200, `${s}: each 1000 bytes and intact`);
      const now = ((await vx.call("stats")) as { counters: typeof before }).counters;
      const runs = now.uso_superpackets - before.uso_superpackets;
      t.ok(runs >= 1, `${s}: vxtun took UDP super-frames from the TAP (${runs})`);
      t.equal(now.uso_segments - before.uso_segments, runs * 40, `${s}: cut at the sender's size`);
      // And back: the kernel peer's datagrams are merged into UDP_L4 writes to the TAP,
      // which the bridge delivers as the sender's datagrams again.
      const back = await udpSegmentRun(lab, {
        clientNs: b.ns,
        clientIp: s,
        serverNs: a.ns,
        serverIp: c,
      });
      t.equal(back.received, 200, `${c}: ${back.received} datagrams received back`);
      t.equal(back.intact, 200, `${c}: each 1000 bytes and intact`);
      t.equal(back.inOrder, 200, `${c}: in order`);
      const after = ((await vx.call("stats")) as { counters: typeof before }).counters;
      const w = after.coalesced_udp_writes - now.coalesced_udp_writes;
      const d = after.coalesced_udp_datagrams - now.coalesced_udp_datagrams;
      t.ok(w >= 1 && d > w, `${c}: vxtun merged ${d} of them into ${w} UDP_L4 writes`);
      before = after;
    }
  },
);

t.test(
  "vxlan-l2, io.queues 3: MACs learned on any queue reach the FDB, and refreshed ones stay",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, a, b } = await kernelBridgePeer(t);
    const vx = await startVxtun(
      lab,
      a.ns,
      l2Config(a, [b], { io: { queues: 3 }, fdb: { ageingSeconds: 3 } }),
    );
    t.teardown(vx.stop);
    type Snap = { counters: Record<string, number>; queues: { count: number; rx: number[] } };
    const s0 = (await vx.call("stats")) as Snap;
    t.equal(s0.queues.count, 3, "three queues on the TAP");
    // Six pods behind B's bridge: six MACs, six flows (the kernel vxlan's source port is
    // a hash of the inner flow, so they spread over A's queues).
    const pods: { ns: string; mac: string }[] = [];
    for (let i = 1; i <= 6; i++) {
      const ns = await lab.addNs(`bp${i}`);
      await lab.veth(ns, "eth0", b.ns, `bp${i}`, { cidrA: `10.244.0.${10 + i}/24`, mtu: 1450 });
      await runOk(["ip", "-n", b.ns, "link", "set", `bp${i}`, "master", "br0", "up"]);
      const mac = JSON.parse(await lab.execOk(ns, ["ip", "-j", "link", "show", "eth0"]))[0].address;
      pods.push({ ns, mac });
    }
    const pings = await Promise.all(pods.map((p) => ping(lab, p.ns, "10.244.0.1")));
    t.same(
      pings.map((r) => r.code),
      [0, 0, 0, 0, 0, 0],
      "every pod reaches A",
    );
    // From here pods 1-3 keep talking and 4-6 fall silent: the talkers start at once, so
    // that the checks below (each a CLI run, seconds on a loaded machine) do not leave
    // them silent for a whole ageing period.
    const talking = pods
      .slice(0, 3)
      .map((p) => lab.exec(p.ns, ["ping", "-c", "48", "-i", "0.25", "-W", "1", "10.244.0.1"]));
    const s1 = (await vx.call("stats")) as Snap;
    const rx = s1.queues.rx.map((v, i) => v - s0.queues.rx[i]);
    t.ok(rx.filter((v) => v > 0).length >= 2, `received over several queues (${rx.join(" / ")})`);
    const show = async () => {
      const r = await vx.cli(["fdb", "show"]);
      if (r.code !== 0) throw new Error(`vxtun fdb show: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    };
    const fdb = await show();
    t.ok(
      pods.every((p) => fdb.includes(`${p.mac} dev vxtap0 dst ${b.address}`)),
      "every pod's MAC is in the FDB, wherever its frames arrived",
    );
    const learned = fdb.split("\n").filter((l) => l.includes("dst") && !l.includes("permanent"));
    t.equal(
      s1.counters.fdb_learned,
      learned.length,
      `fdb_learned counts each MAC once (${learned.length})`,
    );

    // Within a few ageing periods the silent ones go while the talkers stay, even when
    // their frames land on a worker's queue (the worker reports what it saw; the main
    // thread's FDB is the one that ages).
    let aged = false;
    let kept = true;
    for (let waited = 0; waited < 8000 && !aged; waited += 500) {
      await new Promise((r) => setTimeout(r, 500));
      const now = await show();
      kept &&= pods.slice(0, 3).every((p) => now.includes(p.mac));
      aged = pods.slice(3).every((p) => !now.includes(p.mac));
    }
    await Promise.all(talking);
    t.ok(aged, "the silent pods' MACs aged out");
    t.ok(kept, "the talking pods' MACs never did");
  },
);

/** IPv6 addresses fd00:244::1 and ::2 on A's and B's bridges. */
async function enableV6(lab: NetnsLab, a: UnderlayNode, b: UnderlayNode): Promise<void> {
  for (const [n, i] of [
    [a, 1],
    [b, 2],
  ] as const) {
    // The underlay lab turns IPv6 off; the bridges get it back (the ports need none).
    await lab.execOk(n.ns, ["sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=0"]);
    await runOk(["ip", "-n", n.ns, "addr", "add", `fd00:244::${i}/64`, "dev", "br0", "nodad"]);
  }
}

/** Three bridged vxtun vxlan-l2 nodes meshed by flood entries; `extra(i)` adds config. */
async function threeL2Nodes(
  t: Parameters<typeof Lab.create>[0] & { teardown: (f: () => unknown) => void },
  extra: (i: number) => Record<string, unknown>,
  sysctls: string[] = [],
) {
  const lab = await Lab.create(t);
  const nodes = (await buildUnderlay(lab, 3)).nodes;
  const procs: Awaited<ReturnType<typeof startVxtun>>[] = [];
  for (const [i, n] of nodes.entries()) {
    await bridge(n, i + 1);
    for (const kv of sysctls) await lab.execOk(n.ns, ["sysctl", "-qw", kv]);
    const others = nodes.filter((p) => p !== n);
    const vx = await startVxtun(lab, n.ns, l2Config(n, others, extra(i)));
    t.teardown(vx.stop);
    procs.push(vx);
  }
  return { lab, nodes, procs };
}

t.test("three vxtun vxlan-l2 nodes: replication, and bad packets counted", async (t) => {
  if (skipUnlessRoot(t)) return;
  // Broadcast pings are answered only when this is off.
  const { lab, nodes, procs } = await threeL2Nodes(t, () => ({}), [
    "net.ipv4.icmp_echo_ignore_broadcasts=0",
  ]);
  const decap = async (i: number) =>
    ((await procs[i].call("stats")) as { counters: Record<string, number> }).counters.decap_packets;
  const before = [await decap(1), await decap(2)];
  await lab.exec(nodes[0].ns, ["ping", "-b", "-c", "2", "-i", "0.2", "-W", "1", "10.244.0.255"]);
  // ping stops at the first answers; give the slower node a moment to count its copy.
  await new Promise((res) => setTimeout(res, 300));
  t.ok((await decap(1)) > before[0], "the broadcast reached node 2");
  t.ok((await decap(2)) > before[1], "the broadcast reached node 3");
  const a = (await procs[0].call("stats")) as { counters: Record<string, number> };
  t.ok(a.counters.flood_copies >= 1, "node 1 replicated the broadcast head-end");

  // Garbage at node 1's VXLAN port, from node 2: bad flags, unknown VNI, truncated.
  const send = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
frame = bytes.fromhex("ffffffffffff020000000099" + "0800") + bytes(28)
for payload in [bytes(8) + frame, bytes.fromhex("0800000000006300") + frame, b"\\x08\\x00"]:
    for _ in range(5):
        s.sendto(payload, ("${nodes[0].address}", 8472))
`;
  await lab.execOk(nodes[1].ns, ["/usr/bin/python3", "-c", send]);
  const r = await ping(lab, nodes[0].ns, "10.244.0.3");
  t.equal(r.code, 0, "traffic keeps flowing");
  const s = (await procs[0].call("stats")) as { drops: Record<string, number> };
  t.equal(s.drops.vxlan_bad_flags, 5, "I flag clear: dropped as vxlan_bad_flags");
  t.equal(s.drops.unknown_vni, 5, "VNI 99: dropped as unknown_vni");
  t.equal(s.drops.vxlan_truncated, 5, "2-byte payload: dropped as vxlan_truncated");
  const text = await procs[0].cli(["stats"]);
  t.match(text.stdout, /unknown_vni\s+5/, "`vxtun stats` shows the drops by name");
});

t.test("vxlan-l2 fast path: super-frames to an unlearned MAC are flooded head-end", async (t) => {
  if (skipUnlessRoot(t)) return;
  // Node 1 never learns: every unicast frame it sends, TSO super-frames included, goes
  // to both flood remotes, as the kernel's vxlan does for an unknown destination.
  const { lab, nodes, procs } = await threeL2Nodes(t, (i) =>
    i === 0 ? { fdb: { learning: false } } : {},
  );
  const counters = async (i: number) =>
    ((await procs[i].call("stats")) as { counters: Record<string, number> }).counters;
  t.equal((await ping(lab, nodes[0].ns, "10.244.0.2")).code, 0, "ARP and ping cross first");
  const fwd = await iperfTcp(lab, {
    clientNs: nodes[0].ns,
    clientIp: "10.244.0.1",
    serverNs: nodes[1].ns,
    serverIp: "10.244.0.2",
    seconds: 2,
  });
  t.ok(fwd.ok, `iperf3 TCP node 1 -> node 2 by flooding: ${fwd.gbps.toFixed(2)} Gbit/s`);
  const [a, c] = [await counters(0), await counters(2)];
  t.ok(a.tso_superpackets > 100, `node 1 segmented ${a.tso_superpackets} super-frames`);
  // Counted once when read; one flood copy each (segmented again) for the second remote.
  t.ok(
    a.flood_copies >= a.tso_superpackets && a.encap_packets >= 2 * a.tso_segments,
    `each super-frame went to both remotes (${a.flood_copies} flood copies, ${a.encap_packets} segments sent for ${a.tso_segments} made from the reads)`,
  );
  t.ok(c.decap_packets > 1000, `node 3 received the flooded copies (${c.decap_packets})`);
});
