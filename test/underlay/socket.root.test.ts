// UDP and raw IPIP batches crossing a veth pair between two test namespaces.
import { existsSync } from "node:fs";
import t from "tap";
import { parseIpv4, readIpv4, writeIpv4 } from "../../src/encap/addr.js";
import { parseIpv6 } from "../../src/encap/addr6.js";
import { Batch } from "../../src/io/batch.js";
import { Slab } from "../../src/io/slab.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { withNetns } from "../../src/system/netns.js";
import { PeerTable6 } from "../../src/underlay/peers6.js";
import { RawSocket } from "../../src/underlay/raw.js";
import { UdpSocket } from "../../src/underlay/udp.js";
import {
  bytesEqual,
  fillBatch,
  inetChecksum,
  payload,
  readEach,
  readPayload,
  waitFor,
} from "../fixtures/packet-io.js";

const A = parseIpv4("198.18.0.1")!;
const B = parseIpv4("198.18.0.2")!;

async function twoHosts(t: Parameters<typeof NetnsLab.create>[0] & object, mtu?: number) {
  const lab = await NetnsLab.create(t);
  const nsA = await lab.addNs("a");
  const nsB = await lab.addNs("b");
  await lab.veth(nsA, "ua", nsB, "ub", {
    cidrA: "198.18.0.1/24",
    cidrB: "198.18.0.2/24",
    ...(mtu ? { mtu } : {}),
  });
  return { lab, nsA, nsB };
}

t.test("UDP: sendBatch N crosses the veth, received in batches with addr/port/bytes", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { nsA, nsB } = await twoHosts(t);
  const slab = new Slab({ count: 512 });
  const a = withNetns(nsA, () => UdpSocket.open({ slab, addr: A, port: 40001 }));
  const b = withNetns(nsB, () => UdpSocket.open({ slab, addr: B, port: 40002, rcvBuf: 1 << 20 }));
  t.teardown(() => {
    a.close();
    b.close();
  });
  t.equal(a.localPort, 40001);
  t.ok(b.rcvBuf >= 1 << 20, `SO_RCVBUF(FORCE) took effect: ${b.rcvBuf}`);
  const N = 200;
  const got = new Map<number, boolean>();
  let badPeer = 0;
  const reads = readEach(t, b, slab, (batch, i) => {
    if (batch.addr[i] !== A || batch.port[i] !== 40001) badPeer++;
    const body = slab.u8.subarray(batch.off[i], batch.off[i] + batch.len[i]);
    const p = readPayload(body, 300);
    got.set(p.index, p.exact);
  });
  // Resolve ARP first so the burst is not parked in the neighbour queue.
  const tx = new Batch(256);
  fillBatch(slab, tx, 1, 300, B, 40002);
  a.sendBatch(tx);
  tx.freeSlots(slab);
  await waitFor(() => got.size === 1);
  got.clear();
  fillBatch(slab, tx, N, 300, B, 40002);
  const sent = a.sendBatch(tx);
  tx.freeSlots(slab);
  t.equal(sent, N, "sendmmsg sent the whole batch");
  t.ok(await waitFor(() => got.size === N), `received ${got.size}/${N}`);
  t.ok([...got.values()].every(Boolean), "payloads byte-exact");
  t.equal(badPeer, 0, "addr/port of every datagram is 198.18.0.1:40001");
  t.ok(reads.maxBatch > 1, `recvmmsg returned up to ${reads.maxBatch} per callback`);
  const ca = a.counters();
  t.ok(ca.txCalls < ca.txPackets, `sendmmsg calls ${ca.txCalls} for ${ca.txPackets} packets`);
});

t.test("raw IPIP: hand-built outer IPv4 (proto 4) crosses without an ipip module", async (t) => {
  if (skipUnlessRoot(t)) return;
  t.comment(`ipip module loaded: ${existsSync("/sys/module/ipip")}`);
  const { nsA, nsB } = await twoHosts(t);
  const slab = new Slab({ count: 128 });
  const a = withNetns(nsA, () => RawSocket.open({ slab }));
  const b = withNetns(nsB, () => RawSocket.open({ slab }));
  t.teardown(() => {
    a.close();
    b.close();
  });
  const innerSrc = parseIpv4("10.244.1.5")!;
  const innerDst = parseIpv4("10.244.2.5")!;
  const N = 20;
  const INNER = 20 + 8 + 64;
  const tx = new Batch(32);
  for (let i = 0; i < N; i++) {
    const slot = slab.alloc();
    // Inner packet where a TUN read would have put it; the outer header goes into the
    // headroom in front of it, as the dataplane will do.
    const inner = slab.dataOffset(slot);
    const u8 = slab.u8;
    u8.fill(0, inner, inner + 20);
    u8[inner] = 0x45;
    u8[inner + 2] = INNER >> 8;
    u8[inner + 3] = INNER & 0xff;
    u8[inner + 8] = 64;
    u8[inner + 9] = 17;
    writeIpv4(u8, inner + 12, innerSrc);
    writeIpv4(u8, inner + 16, innerDst);
    const ck = inetChecksum(u8, inner, 20);
    u8[inner + 10] = ck >> 8;
    u8[inner + 11] = ck & 0xff;
    u8.set([0x30, 0x39, 0x00, 0x35, 0, 72, 0, 0], inner + 20); // UDP 12345 -> 53, no csum
    u8.set(payload(i, 64), inner + 28);
    const off = inner - 20;
    u8.fill(0, off, off + 20);
    u8[off] = 0x45;
    u8[off + 1] = 0; // TOS
    u8[off + 2] = (INNER + 20) >> 8;
    u8[off + 3] = (INNER + 20) & 0xff;
    u8[off + 4] = 0x12; // ID 0x1234 + i (non-zero: kept by the kernel)
    u8[off + 5] = 0x34 + i;
    u8[off + 6] = 0x40; // DF
    u8[off + 8] = 33; // TTL, so we can see it is ours
    u8[off + 9] = 4; // IPPROTO_IPIP
    writeIpv4(u8, off + 12, A);
    writeIpv4(u8, off + 16, B);
    const oc = inetChecksum(u8, off, 20);
    u8[off + 10] = oc >> 8;
    u8[off + 11] = oc & 0xff;
    tx.push(slot, off, INNER + 20, B, 0);
  }
  const copies = Array.from({ length: N }, (_, i) =>
    slab.u8.slice(tx.off[i], tx.off[i] + tx.len[i]),
  );

  let ok = 0;
  let bad = 0;
  readEach(
    t,
    b,
    slab,
    (batch, i) => {
      const u8 = slab.u8;
      const off = batch.off[i];
      const pkt = u8.subarray(off, off + batch.len[i]);
      const want = copies[u8[off + 5] - 0x34];
      const outerOk =
        batch.addr[i] === A &&
        u8[off + 9] === 4 &&
        u8[off + 8] === 33 &&
        readIpv4(u8, off + 12) === A &&
        readIpv4(u8, off + 16) === B &&
        inetChecksum(u8, off, 20) === 0;
      if (outerOk && want && bytesEqual(pkt, want)) ok++;
      else bad++;
    },
    32,
  );
  t.equal(a.sendBatch(tx), N, "sendmmsg sent all IPIP packets");
  tx.freeSlots(slab);
  t.ok(await waitFor(() => ok === N), `received ${ok}/${N} byte-exact (outer header as built)`);
  t.equal(bad, 0, "nothing unexpected arrived");
});

t.test("UDP: EMSGSIZE with IP_PMTUDISC_DO is counted and reported with the MTU", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { nsA } = await twoHosts(t, 1400);
  const slab = new Slab({ count: 16, slotSize: 4096 });
  const a = withNetns(nsA, () => UdpSocket.open({ slab, addr: A, pmtuDisc: "do" }));
  t.teardown(() => a.close());
  const reports: [number, number, number][] = [];
  a.onPmtu = (addr, port, mtu) => reports.push([addr, port, mtu]);
  const tx = new Batch(4);
  fillBatch(slab, tx, 3, 100, B, 9);
  tx.len[1] = 2000; // the middle one is too big
  t.equal(a.sendBatch(tx), 3, "all consumed: two sent, the big one dropped");
  tx.freeSlots(slab);
  const c = a.counters();
  t.equal(c.emsgsize, 1, "EMSGSIZE counted");
  t.equal(c.txPackets, 2, "the others still went out");
  t.same(reports, [[B, 9, 1400]], "onPmtu(dst, port, 1400) from the error queue");
});

/** Two namespaces on a veth with IPv6 only (2001:2::1 and ::2, no DAD), and a peer table. */
async function twoHosts6(t: Parameters<typeof NetnsLab.create>[0] & object, mtu = 1500) {
  const lab = await NetnsLab.create(t);
  const nsA = await lab.addNs("a");
  const nsB = await lab.addNs("b");
  await lab.veth(nsA, "ua", nsB, "ub", { mtu });
  for (const [ns, dev, addr] of [
    [nsA, "ua", "2001:2::1"],
    [nsB, "ub", "2001:2::2"],
  ]) {
    await lab.execOk(ns, ["sysctl", "-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
    await lab.execOk(ns, ["ip", "-6", "addr", "add", `${addr}/64`, "dev", dev, "nodad"]);
  }
  const peers = new PeerTable6();
  return { lab, nsA, nsB, peers };
}

t.test("UDP over IPv6: peers by table index both ways, sources resolved per batch", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { nsA, nsB, peers } = await twoHosts6(t);
  const slab = new Slab({ count: 512 });
  const a6 = parseIpv6("2001:2::1")!;
  const b6 = parseIpv6("2001:2::2")!;
  const a = withNetns(nsA, () => UdpSocket.open({ slab, port: 40001, v6: { addr: a6, peers } }));
  const b = withNetns(nsB, () => UdpSocket.open({ slab, port: 40002, v6: { addr: b6, peers } }));
  t.teardown(() => {
    a.close();
    b.close();
  });
  t.equal(a.describe(), "udp [2001:2::1]:40001", "describe() names the IPv6 address");
  const toB = peers.parse("2001:2::2")!;
  const fromA = peers.parse("2001:2::1")!;
  t.ok(toB > 0 && fromA > 0 && toB !== fromA, "two table entries, neither 0");
  const N = 100;
  const got = new Set<number>();
  let badPeer = 0;
  readEach(t, b, slab, (batch, i) => {
    if (batch.addr[i] !== fromA || batch.port[i] !== 40001) badPeer++;
    const p = readPayload(slab.u8.subarray(batch.off[i], batch.off[i] + batch.len[i]), 200);
    if (p.exact) got.add(p.index);
  });
  const tx = new Batch(128);
  fillBatch(slab, tx, 1, 200, toB, 40002);
  a.sendBatch(tx); // neighbour discovery first
  tx.freeSlots(slab);
  await waitFor(() => got.size === 1);
  got.clear();
  fillBatch(slab, tx, N, 200, toB, 40002);
  t.equal(a.sendBatch(tx), N, "sendmmsg to table index -> sockaddr_in6");
  tx.freeSlots(slab);
  t.ok(await waitFor(() => got.size === N), `received ${got.size}/${N} byte-exact`);
  t.equal(badPeer, 0, "every datagram's source resolved to 2001:2::1's index, port 40001");
  t.equal(peers.size, 3, "no new entries for a known source");
  // An index that names no entry is dropped and counted, not sent to "::".
  fillBatch(slab, tx, 1, 200, 999, 40002);
  t.equal(a.sendBatch(tx), 1, "consumed");
  tx.freeSlots(slab);
  t.equal(a.counters().txErrors, 1, "unknown index: a tx error");
});

t.test(
  "UDP over IPv6: EMSGSIZE (IPV6_PMTUDISC_DO) reported with the MTU and the index",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const { nsA, peers } = await twoHosts6(t, 1400);
    const slab = new Slab({ count: 16, slotSize: 4096 });
    const a = withNetns(nsA, () =>
      UdpSocket.open({ slab, pmtuDisc: "do", v6: { addr: parseIpv6("2001:2::1")!, peers } }),
    );
    t.teardown(() => a.close());
    const reports: [number, number, number][] = [];
    a.onPmtu = (addr, port, mtu) => reports.push([addr, port, mtu]);
    const dst = peers.parse("2001:2::2")!;
    const tx = new Batch(4);
    fillBatch(slab, tx, 3, 100, dst, 9);
    tx.len[1] = 2000;
    t.equal(a.sendBatch(tx), 3, "all consumed: two sent, the big one dropped");
    tx.freeSlots(slab);
    t.equal(a.counters().emsgsize, 1, "EMSGSIZE counted");
    t.same(reports, [[dst, 9, 1400]], "onPmtu(index, port, 1400) from IPV6_RECVERR");
  },
);
