// Heap bytes the fast path allocates per super-packet, without namespaces: the real
// Forwarder (fromDevice: TSO super-packet -> segments -> UDP_SEGMENT messages; and
// fromUnderlay: UDP_GRO datagram -> segments -> one coalesced TUN write) with sinks
// that only count. Run with a young generation big enough that no GC happens during
// the measurement. What a packet would allocate (a boxed number, an object, a closure)
// lands in the young generation, so that is what counts; old and code space grow when
// V8 compiles or deoptimizes (this harness's own loop too, under CPU contention), which
// is printed but is not per-packet allocation:
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 --import tsx bench/fastpath-alloc.ts
import { getHeapSpaceStatistics } from "node:v8";
import { NativeSummer, type UdpSenderPool } from "../src/dataplane/fastpath.js";
import { Forwarder, INHERIT, MODE_VXLAN } from "../src/dataplane/forwarder.js";
import { SUM_MANY, VNET_GSO_TCPV4, VNET_LEN, vnetWrite } from "../src/dataplane/segment.js";
import { Stats } from "../src/dataplane/stats.js";
import { write16, write32 } from "../src/encap/bytes.js";
import { checksumFold, checksumSum, internetChecksum } from "../src/encap/checksum.js";
import { DfPolicy } from "../src/encap/ipip.js";
import { ipv4PseudoHeaderSum } from "../src/encap/ipv4.js";
import { Fdb, NeighTable, RouteTable } from "../src/fdb/index.js";
import { Batch } from "../src/tun/batch.js";
import { GsoBatch } from "../src/tun/gso.js";
import { Slab } from "../src/tun/slab.js";

const N = Number(process.argv[2] ?? 20000);
const WARM = Number(process.argv[3] ?? 20000);
const POD_A = 0x0af40101;
const POD_B = 0x0af40201;
const NODE_B = 0xc6120002;
const MAC_B = 0x020000000201;
const MSS = 1398;
const PAYLOAD = 60 * 1024 - 52;

const slab = new Slab({ count: 64, slotSize: 128 + 65536, headroom: 128 });
const u8 = slab.u8;
const stats = new Stats();
const fdb = new Fdb({ dev: "vxtun0", vni: 1, dstPort: 8472, ageingMs: 0 });
const neigh = new NeighTable({ dev: "vxtun0" });
const routes = new RouteTable({ dev: "vxtun0" });
routes.replace(0x0af40200, 24, { gateway: 0x0af40200, onlink: true });
neigh.replace(0x0af40200, MAC_B);
fdb.replace(MAC_B, NODE_B);

let sent = 0;
const sink = {
  sendBatch: (_b: Batch, _from: number, count: number) => {
    sent += count;
    return count;
  },
};
const sockets = Array.from({ length: 4 }, () => ({
  sendGso: (_b: GsoBatch, _from: number, count: number) => {
    sent += count;
    return count;
  },
}));
const pool = {
  sockets,
  batches: sockets.map(() => new GsoBatch(64).withGather(2048)),
  ports: Uint16Array.from([40000, 41000, 42000, 43000]),
  get size() {
    return 4;
  },
} as unknown as UdpSenderPool;
const rxGso = new Uint16Array(64);
const fwd = new Forwarder(
  {
    mode: MODE_VXLAN,
    vni: 1,
    port: 8472,
    sportLo: 32768,
    sportHi: 60999,
    localIp: 0xc6120001,
    vtepMac: 0x020000000101,
    ttl: 64,
    tos: INHERIT,
    df: DfPolicy.Clear,
    proxyArp: false,
    learning: false,
    allowPeers: [],
    batch: 64,
    tunnelMtu: 1450,
    underlayMtu: 1500,
    fragment: 0,
  },
  slab,
  fdb,
  neigh,
  routes,
  stats,
  sink,
  sink,
  { pool, udpSegment: true, rxGso, summer: new NativeSummer(slab.buffer) },
);

/** An IPv4 header POD_A -> POD_B (DF, TTL 64) at `ip`, checksum filled in. */
function ipv4Header(ip: number, total: number, proto: number, id: number): void {
  u8[ip] = 0x45;
  u8[ip + 1] = 0;
  write16(u8, ip + 2, total);
  write16(u8, ip + 4, id);
  write16(u8, ip + 6, 0x4000);
  u8[ip + 8] = 64;
  u8[ip + 9] = proto;
  write32(u8, ip + 12, POD_A);
  write32(u8, ip + 16, POD_B);
  write16(u8, ip + 10, 0);
  write16(u8, ip + 10, internetChecksum(u8, ip, 20));
}

/** A TSO super-packet in slot `slot` with its virtio_net_hdr in front. */
function superPacket(slot: number, seq: number): number {
  const ip = slab.dataOffset(slot);
  const total = 20 + 32 + PAYLOAD;
  ipv4Header(ip, total, 6, 0);
  const tcp = ip + 20;
  write16(u8, tcp, 40000);
  write16(u8, tcp + 2, 5201);
  write32(u8, tcp + 4, seq);
  u8[tcp + 12] = 8 << 4;
  u8[tcp + 13] = 0x10;
  vnetWrite(u8, ip - VNET_LEN, 1, VNET_GSO_TCPV4, 52, MSS, 20, 16);
  return total;
}

const dev = new Batch(64);
function txRound(i: number): void {
  const slot = slab.alloc();
  const len = superPacket(slot, i * PAYLOAD);
  dev.clear();
  dev.push(slot, slab.dataOffset(slot), len);
  dev.count = 1;
  fwd.fromDevice(dev);
}

// RX: one GRO datagram of VXLAN segments, as UDP_GRO delivers them: the TX path's
// messages for one super-packet, glued (captured by sockets that copy instead of send).
const rx = new Batch(64);
const seg0 = slab.alloc();
let groLen = 0;
let groSize = 0;
function capture(b: GsoBatch, from: number, count: number): number {
  const g = b.gather!;
  const at0 = slab.dataOffset(seg0);
  for (let m = from; m < from + count; m++) {
    for (let r = 0; r < g.count[m]; r++) {
      const o = g.off[g.start[m] + r];
      const l = g.len[g.start[m] + r];
      if (groLen + l <= 65000) u8.copyWithin(at0 + groLen, o, o + l);
      groLen += l;
    }
    if (b.gso[m] > 0) groSize = b.gso[m];
  }
  return count;
}
function rxRound(): void {
  const slot = slab.alloc();
  const off = slab.dataOffset(slot);
  u8.copyWithin(off, slab.dataOffset(seg0), slab.dataOffset(seg0) + groLen);
  rx.clear();
  rx.push(slot, off, groLen, NODE_B, 8472);
  rx.count = 1;
  rxGso[0] = groSize;
  fwd.fromUnderlay(rx);
}

{
  const keep = sockets.map((x) => x.sendGso);
  for (const x of sockets) x.sendGso = capture;
  txRound(0);
  for (const [k, x] of sockets.entries()) x.sendGso = keep[k];
  // Keep only whole segments that fit one datagram.
  groLen = Math.min(groLen, Math.floor(60000 / groSize) * groSize);
}
void SUM_MANY;
void checksumFold;
void checksumSum;
void ipv4PseudoHeaderSum;

/** A 100-byte UDP packet (plain vnet header): the raw, one-packet path. */
function txSmall(i: number): void {
  const slot = slab.alloc();
  const ip = slab.dataOffset(slot);
  ipv4Header(ip, 100, 17, i & 0xffff);
  write16(u8, ip + 20, 40000);
  write16(u8, ip + 22, 9);
  write16(u8, ip + 24, 80);
  write16(u8, ip + 26, 0);
  for (let k = 0; k < VNET_LEN; k++) u8[ip - VNET_LEN + k] = 0;
  dev.clear();
  dev.push(slot, ip, 100);
  fwd.fromDevice(dev);
}

/** One VXLAN datagram holding one small segment (no GRO). */
function rxSmall(): void {
  const slot = slab.alloc();
  const off = slab.dataOffset(slot);
  u8.copyWithin(off, slab.dataOffset(seg0), slab.dataOffset(seg0) + groSize);
  rx.clear();
  rx.push(slot, off, groSize, NODE_B, 8472);
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
console.log(`rx datagram: ${groLen} bytes, gso ${groSize}`);
measure("rx (fromUnderlay)", () => rxRound());
measure("tx small packet (raw path)", txSmall);
measure("rx single datagram", () => rxSmall());
console.log(
  `sent ${sent}, drops`,
  Object.entries(stats.snapshot().drops).filter(([, v]) => v > 0),
);
