// Heap bytes the fast path allocates per super-packet, without namespaces: the real
// Forwarder (fromDevice: TSO or USO super-packet -> segments -> UDP_SEGMENT messages;
// and fromUnderlay: UDP_GRO datagram of TCP segments or UDP datagrams -> one coalesced
// TUN write) with sinks
// that only count. Run with a young generation big enough that no GC happens during
// the measurement. What a packet would allocate (a boxed number, an object, a closure)
// lands in the young generation, so that is what counts; old and code space grow when
// V8 compiles or deoptimizes (this harness's own loop too, under CPU contention), which
// is printed but is not per-packet allocation:
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/fastpath-alloc.ts
import { getHeapSpaceStatistics } from "node:v8";
import { write16 } from "../src/encap/bytes.js";
import { Batch } from "../src/io/batch.js";
import type { GsoBatch } from "../src/io/gso-batch.js";
import { VNET_LEN } from "../src/tun/vnet.js";
import { forwarderRig, NODE_B } from "../test/fixtures/forwarder-rig.js";

const N = Number(process.argv[2] ?? 20000);
const WARM = Number(process.argv[3] ?? 20000);
const PAYLOAD = 60 * 1024 - 52;

const rig = forwarderRig();
const { slab, u8, stats, fwd, sockets, rxGso, counted, ipv4Header, superPacket, udpSuperPacket } =
  rig;

const dev = new Batch(64);
/** A TSO super-packet from the device (`v6`: a TSO6 one, routed as flannel-v6.1). */
function txRound(i: number, v6 = false): void {
  const slot = slab.alloc();
  const len = superPacket(slot, i * PAYLOAD, PAYLOAD, false, v6);
  dev.clear();
  dev.push(slot, slab.dataOffset(slot), len);
  dev.count = 1;
  fwd.fromDevice(dev);
}

/** A USO super-packet (UDP_SEGMENT run of 1200-byte datagrams) from the device. */
const USO_PAYLOAD = 48 * 1200;
function txUso(_i: number): void {
  const slot = slab.alloc();
  const len = udpSuperPacket(slot, USO_PAYLOAD, 1200);
  dev.clear();
  dev.push(slot, slab.dataOffset(slot), len);
  dev.count = 1;
  fwd.fromDevice(dev);
}

// RX: one GRO datagram of VXLAN segments, as UDP_GRO delivers them: the TX path's
// messages for one super-packet, glued (captured by sockets that copy instead of send).
const rx = new Batch(64);
interface Gro {
  slot: number;
  len: number;
  size: number;
}
function captureGro(txOnce: () => void): Gro {
  const g: Gro = { slot: slab.alloc(), len: 0, size: 0 };
  const at0 = slab.dataOffset(g.slot);
  const capture = (b: GsoBatch, from: number, count: number): number => {
    const ga = b.gather!;
    for (let m = from; m < from + count; m++) {
      for (let r = 0; r < ga.count[m]; r++) {
        const o = ga.off[ga.start[m] + r];
        const l = ga.len[ga.start[m] + r];
        if (g.len + l <= 65000) u8.copyWithin(at0 + g.len, o, o + l);
        g.len += l;
      }
      if (b.gso[m] > 0) g.size = b.gso[m];
    }
    return count;
  };
  const keep = sockets.map((x) => x.sendGso);
  for (const x of sockets) x.sendGso = capture;
  txOnce();
  for (const [k, x] of sockets.entries()) x.sendGso = keep[k];
  // Keep only whole segments that fit one datagram.
  g.len = Math.min(g.len, Math.floor(60000 / g.size) * g.size);
  return g;
}
function rxRound(g: Gro): void {
  const slot = slab.alloc();
  const off = slab.dataOffset(slot);
  u8.copyWithin(off, slab.dataOffset(g.slot), slab.dataOffset(g.slot) + g.len);
  rx.clear();
  rx.push(slot, off, g.len, NODE_B, 8472);
  rx.count = 1;
  rxGso[0] = g.size;
  fwd.fromUnderlay(rx);
}
const tcpGro = captureGro(() => txRound(0));
const udpGro = captureGro(() => txUso(0));
const tcp6Gro = captureGro(() => txRound(0, true));

/** A 100-byte UDP packet (plain vnet header): the raw, one-packet path. */
function txSmall(i: number): void {
  const slot = slab.alloc();
  const ip = slab.dataOffset(slot);
  ipv4Header(ip, 100, 17, i & 0xffff);
  sendUdp(slot, ip + 20, 80);
}

/** A UDP header of `len` bytes at `udp`, then the packet in `slot` from the device. */
function sendUdp(slot: number, udp: number, len: number): void {
  write16(u8, udp, 40000);
  write16(u8, udp + 2, 9);
  write16(u8, udp + 4, len);
  write16(u8, udp + 6, 0);
  const ip = slab.dataOffset(slot);
  for (let k = 0; k < VNET_LEN; k++) u8[ip - VNET_LEN + k] = 0;
  dev.clear();
  dev.push(slot, ip, 100);
  fwd.fromDevice(dev);
}

/** The same as IPv6 (fd00:0:0:1::1 -> fd00:0:0:2::1): the IPv6 route path. */
function txSmall6(i: number): void {
  const slot = slab.alloc();
  const ip = slab.dataOffset(slot);
  rig.ipv6Header(ip, 60, 17);
  write16(u8, ip + 2, i & 0xffff); // a flow label
  sendUdp(slot, ip + 40, 60);
}

/** One VXLAN datagram holding one small segment (no GRO). */
function rxSmall(): void {
  const slot = slab.alloc();
  const off = slab.dataOffset(slot);
  u8.copyWithin(off, slab.dataOffset(tcpGro.slot), slab.dataOffset(tcpGro.slot) + tcpGro.size);
  rx.clear();
  rx.push(slot, off, tcpGro.size, NODE_B, 8472);
  rxGso[0] = 0;
  fwd.fromUnderlay(rx);
}

/**
 * Warm up (V8 tiers the code up and may deoptimize once or twice on new paths), then
 * three windows of N calls: the smallest is the steady state, a window that caught a
 * late re-optimization shows more.
 */
function measure(name: string, f: (i: number) => void): void {
  for (let i = 0; i < WARM; i++) f(i);
  const young: number[] = [];
  const other: number[] = [];
  for (let w = 0; w < 3; w++) {
    (globalThis as { gc?: () => void }).gc?.();
    const [y0, o0] = heapUsed();
    for (let i = 0; i < N; i++) f(i);
    const [y1, o1] = heapUsed();
    young.push((y1 - y0) / N);
    other.push((o1 - o0) / N);
  }
  const fmt = (v: number[]) => v.map((x) => x.toFixed(1)).join(", ");
  console.log(
    `${name}: ${Math.min(...young).toFixed(1)} heap bytes per call over ${N} (young generation, windows: ${fmt(young)}; old + code space: ${fmt(other)})`,
  );
}

/** Bytes in use: [young generation, everything else]. */
function heapUsed(): [number, number] {
  let young = 0;
  let other = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === "new_space" || s.space_name === "new_large_object_space") {
      young += s.space_used_size;
    } else other += s.space_used_size;
  }
  return [young, other];
}
measure("tx (fromDevice)", txRound);
console.log(`rx datagram: ${tcpGro.len} bytes, gso ${tcpGro.size}`);
measure("rx (fromUnderlay)", () => rxRound(tcpGro));
measure("tx USO super-packet (fromDevice)", txUso);
console.log(`rx UDP datagram: ${udpGro.len} bytes, gso ${udpGro.size}`);
measure("rx UDP GRO datagram, merged (fromUnderlay)", () => rxRound(udpGro));
measure("tx small packet (raw path)", txSmall);
measure("tx small IPv6 packet (raw path)", txSmall6);
measure("rx single datagram", () => rxSmall());
// IPv6 (flannel-v6.1 routing) last, so the IPv4 measurements above run as before.
measure("tx TSO6 super-packet (fromDevice)", (i) => txRound(i, true));
console.log(`rx IPv6 datagram: ${tcp6Gro.len} bytes, gso ${tcp6Gro.size}`);
measure("rx IPv6 GRO datagram, merged (fromUnderlay)", () => rxRound(tcp6Gro));
{
  const c = stats.snapshot().counters;
  console.log(
    `merged writes: tcp ${c.coalesced_writes}, udp ${c.coalesced_udp_writes} (${c.coalesced_udp_datagrams} datagrams); bad inner checksums ${c.rx_inner_csum_bad}`,
  );
}
console.log(
  `sent ${counted.sent}, drops`,
  Object.entries(stats.snapshot().drops).filter(([, v]) => v > 0),
);
