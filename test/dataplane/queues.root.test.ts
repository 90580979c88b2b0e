// Multi-queue forwarding (io.queues, src/dataplane/queues.ts): the TUN has one queue per
// thread, each worker holds a copy of the tables. Many flows spread over the queues;
// a table change made through the control socket reaches every queue (a worker still
// forwarding with a stale copy would let some flows through); counters add up.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { iperf } from "../fixtures/traffic.js";
import type { VxtunProc } from "../fixtures/vxtun.js";
import { vxtunPair } from "../fixtures/vxtun-pair.js";

const QUEUES = 3;
const FLOWS = 40;

/** Python: FLOWS UDP datagrams from `src` to `dst`, each from a new socket (a new flow). */
const flowsFrom = (src: string, dst: string) => `import socket
for i in range(${FLOWS}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("${src}", 0))
    s.sendto(b"x" * 100, ("${dst}", 9))
    s.close()`;

/** iperf3 -P 4 between the pair's pod addresses, node 2 -> node 1, then back. */
async function fourStreamsBothWays(
  t: { ok: (v: unknown, m: string) => void },
  lab: NetnsLab,
  nodes: { ns: string }[],
): Promise<void> {
  for (const [from, to] of [
    [1, 0],
    [0, 1],
  ] as const) {
    const r = await iperf(lab, {
      serverNs: nodes[to].ns,
      serverIp: `10.244.${to + 1}.1`,
      clientNs: nodes[from].ns,
      clientIp: `10.244.${from + 1}.1`,
      seconds: 2,
      streams: 4,
    });
    t.ok(
      r.ok && r.gbps > 0.1,
      `iperf3 -P 4 node ${from + 1} -> node ${to + 1}: ${r.gbps.toFixed(2)} Gbit/s ${r.error ?? ""}`,
    );
  }
}

interface Snap {
  counters: Record<string, number>;
  drops: Record<string, number>;
  queues: { count: number; why: string; rx: number[] };
}

t.test(`io.queues ${QUEUES}: flows spread, table changes reach every queue`, async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes, procs } = await vxtunPair(lab, () => ({ io: { queues: QUEUES } }));
  const [a, b] = procs;
  const stats = async (p: VxtunProc) => (await p.call("stats")) as Snap;
  const links = await lab.exec(nodes[1].ns, ["ip", "-d", "link", "show", "vxtun0"]);
  t.match(links.stdout, /numtxqueues/, "device exists");
  // FLOWS UDP datagrams from node 2, each from its own socket (source port): a new flow.
  const burst = () =>
    lab.exec(nodes[1].ns, ["/usr/bin/python3", "-c", flowsFrom("10.244.2.1", "10.244.1.1")]);

  // A worker may still be on the last packets when a burst's sender exits: read the
  // counters again until every packet of the burst is accounted for (sent or dropped).
  const settled = async (from: Snap): Promise<Snap> => {
    const deadline = Date.now() + 3000;
    for (;;) {
      const s = await stats(b);
      const seen =
        s.counters.encap_packets -
        from.counters.encap_packets +
        s.drops.no_neigh -
        from.drops.no_neigh;
      if (seen >= FLOWS || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const s0 = await stats(b);
  t.equal(s0.queues.count, QUEUES, `vxtun stats reports ${QUEUES} queues`);
  t.equal(s0.queues.rx.length, QUEUES, "and a counter per queue");
  t.equal((await burst()).code, 0, "burst sent");
  const s1 = await settled(s0);
  const per = s1.queues.rx.map((v, i) => v - s0.queues.rx[i]);
  t.ok(
    per.filter((v) => v > 0).length >= 2,
    `${FLOWS} flows used more than one queue (${per.join(" / ")})`,
  );
  t.equal(s1.counters.encap_packets - s0.counters.encap_packets, FLOWS, "all encapsulated");
  t.equal(
    s1.counters.tun_rx_packets,
    s1.queues.rx.reduce((x, y) => x + y, 0) - s1.counters.underlay_rx_packets,
    "the process-wide counters are the sum over queues",
  );

  // Remove the neighbour (our table only; the kernel route stays, so packets still reach
  // the TUN): every queue must now drop them as no_neigh.
  await b.call("neigh.del", { ip: "10.244.1.0" });
  await new Promise((r) => setTimeout(r, 200));
  const s2 = await stats(b);
  t.equal((await burst()).code, 0);
  const s3 = await settled(s2);
  t.equal(s3.counters.encap_packets - s2.counters.encap_packets, 0, "nothing forwarded");
  t.equal(s3.drops.no_neigh - s2.drops.no_neigh, FLOWS, `all ${FLOWS} dropped as no_neigh`);
  await b.call("neigh.add", { ip: "10.244.1.0", lladdr: "02:00:00:00:01:01" });
  await new Promise((r) => setTimeout(r, 200));
  const s4 = await stats(b);
  const da = (await stats(a)).counters.decap_packets;
  t.equal((await burst()).code, 0);
  const s5 = await settled(s4);
  t.equal(s5.counters.encap_packets - s4.counters.encap_packets, FLOWS, "forwarded again");
  let got = 0;
  for (const deadline = Date.now() + 3000; got < FLOWS && Date.now() < deadline; ) {
    got = (await stats(a)).counters.decap_packets - da;
    if (got < FLOWS) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(got >= FLOWS, `and received by node 1 (${got})`);

  // TCP with several streams through the queues, both ways.
  await fourStreamsBothWays(t, lab, nodes);
  const end = await stats(b);
  t.equal(end.drops.pool_exhausted, 0, "no slab ran dry");
  t.equal(end.counters.tun_write_errors, 0, "no device write failed");
});

t.test(
  `ipip, io.queues ${QUEUES}: each raw socket takes its share, every packet once`,
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const lab = await NetnsLab.create(t);
    const { nodes, procs } = await vxtunPair(lab, () => ({ io: { queues: QUEUES } }), "ipip");
    const stats = async (p: VxtunProc) => (await p.call("stats")) as Snap;
    const [a, b] = procs;
    // FLOWS UDP datagrams from node 2 to node 1, each from its own source port.
    const burst = () =>
      lab.exec(nodes[1].ns, ["/usr/bin/python3", "-c", flowsFrom("10.244.2.1", "10.244.1.1")]);
    const a0 = await stats(a);
    const b0 = await stats(b);
    t.equal(a0.queues.count, QUEUES, `vxtun stats reports ${QUEUES} queues in ipip mode`);
    t.equal((await burst()).code, 0, "burst sent");
    // Every raw socket of protocol 4 sees every packet: without the filters node 1 would
    // decapsulate each datagram once per queue.
    let a1 = a0;
    for (const deadline = Date.now() + 3000; Date.now() < deadline; ) {
      a1 = await stats(a);
      if (a1.counters.decap_packets - a0.counters.decap_packets >= FLOWS) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    a1 = await stats(a);
    t.equal(
      a1.counters.decap_packets - a0.counters.decap_packets,
      FLOWS,
      `node 1 decapsulated each of the ${FLOWS} exactly once`,
    );
    const rx = a1.queues.rx.map((v, i) => v - a0.queues.rx[i]);
    t.ok(
      rx.filter((v) => v > 0).length >= 2,
      `received flows spread over the queues (${rx.join(" / ")})`,
    );
    const b1 = await stats(b);
    t.equal(b1.counters.encap_packets - b0.counters.encap_packets, FLOWS, "node 2 sent them all");

    // A runt IPIP packet (8 bytes inside): no filter can hash it; queue 0 takes it and
    // counts the drop, once.
    const runt = await lab.exec(nodes[1].ns, [
      "/usr/bin/python3",
      "-c",
      `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
s.sendto(bytes(8), ("${nodes[0].address}", 0))`,
    ]);
    t.equal(runt.code, 0, `runt sent ${runt.stderr}`);
    await new Promise((r) => setTimeout(r, 300));
    const a2 = await stats(a);
    t.equal(
      a2.drops.ipip_bad_inner - a1.drops.ipip_bad_inner,
      1,
      "dropped as ipip_bad_inner, once",
    );

    await fourStreamsBothWays(t, lab, nodes);
    for (const p of procs) {
      const s = await stats(p);
      const other = Object.entries(s.drops).filter(([k, n]) => n > 0 && k !== "ipip_bad_inner");
      t.same(other, [], "no other drops");
    }
  },
);
