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
import { VNET_LEN } from "../src/dataplane/segment.js";
import { write16 } from "../src/encap/bytes.js";
import { Batch } from "../src/tun/batch.js";
import type { GsoBatch } from "../src/tun/gso.js";
import { forwarderRig, NODE_B } from "./rig.js";

const N = Number(process.argv[2] ?? 20000);
const WARM = Number(process.argv[3] ?? 20000);
const PAYLOAD = 60 * 1024 - 52;

const { slab, u8, stats, fwd, sockets, rxGso, counted, ipv4Header, superPacket } = forwarderRig();

const dev = new Batch(64);
function txRound(i: number): void {
  const slot = slab.alloc();
  const len = superPacket(slot, i * PAYLOAD, PAYLOAD);
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
  `sent ${counted.sent}, drops`,
  Object.entries(stats.snapshot().drops).filter(([, v]) => v > 0),
);
