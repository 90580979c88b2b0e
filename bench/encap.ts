// Wire-format microbenchmarks: VXLAN (L3 and L2) and IPIP encap/decap with 64- and
// 1400-byte inner packets, the Internet checksum over 1400 bytes, and heap growth +
// GC count over 10 M encap+decap operations (must be ~0: the hot path allocates nothing).
// Run: node --expose-gc --import tsx bench/encap.ts   (prints a Markdown table)
//
// Each benchmark op is a batch of BATCH operations on the same slot, so the harness's
// per-op overhead is amortised and figures are per packet. Encap is idempotent in
// place (it rewrites the same headroom), decap never writes, so a slot can be reused.

import { PerformanceObserver } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import Benchmark from "benchmark";
import { internetChecksum } from "../src/encap/checksum.js";
import { ethernetParse, newEthernetInfo } from "../src/encap/ethernet.js";
import { DfPolicy, ipipDecap, ipipEncap, newIpipInfo } from "../src/encap/ipip.js";
import { IPPROTO_UDP, ipv4Parse, newIpv4Info } from "../src/encap/ipv4.js";
import {
  newVxlanInfo,
  VXLAN_SPORT_MAX,
  VXLAN_SPORT_MIN,
  vxlanDecap,
  vxlanEncapL2,
  vxlanEncapL3,
  vxlanEncapL3Template,
  vxlanSourcePort,
  vxlanWriteL3Template,
} from "../src/encap/vxlan.js";
import { HEADROOM, innerIp, NODE_A, NODE_B, VTEP_A, VTEP_B } from "../test/fixtures/packets.js";

const BATCH = 1000;
const eth = newEthernetInfo();
const ip = newIpv4Info();
const vx = newVxlanInfo();
const ipip = newIpipInfo();
// Kept within Smi range: a module-level double would allocate a HeapNumber per write.
let sink = 0;

interface Slot {
  buf: Buffer;
  len: number;
}

/** An inner UDP/IPv4 packet of `size` bytes after HEADROOM free bytes. */
function slot(size: number): Slot {
  return innerIp(IPPROTO_UDP, size - 28);
}

function vxlanL3Encap(s: Slot): void {
  const off = vxlanEncapL3(s.buf, HEADROOM, s.len, 1, VTEP_A, VTEP_B);
  sink =
    (sink + off + vxlanSourcePort(s.buf, off + 8, s.len + 14, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX)) &
    0xffff;
}

/** Encapsulated slot: where the VXLAN header starts and the UDP payload length. */
function encapped(s: Slot): { buf: Buffer; off: number; len: number } {
  const off = vxlanEncapL3(s.buf, HEADROOM, s.len, 1, VTEP_A, VTEP_B);
  return { buf: s.buf, off, len: s.len + 22 };
}

function vxlanL3Decap(e: { buf: Buffer; off: number; len: number }): void {
  let c = vxlanDecap(e.buf, e.off, e.len, vx);
  c |= ethernetParse(e.buf, vx.innerOff, vx.innerLen, eth);
  c |= ipv4Parse(e.buf, eth.payloadOff, eth.payloadLen, ip);
  sink = (sink + c + ip.totalLen) & 0xffff;
}

function vxlanL2Encap(buf: Buffer, frameOff: number, frameLen: number): void {
  const off = vxlanEncapL2(buf, frameOff, 1);
  sink =
    (sink + off + vxlanSourcePort(buf, frameOff, frameLen, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX)) &
    0xffff;
}

function vxlanL2Decap(e: { buf: Buffer; off: number; len: number }): void {
  const c =
    vxlanDecap(e.buf, e.off, e.len, vx) | ethernetParse(e.buf, vx.innerOff, vx.innerLen, eth);
  sink = (sink + c + eth.ethertype) & 0xffff;
}

/** The outer header's parameters, owned once as the dataplane does. */
const IPIP = { src: NODE_A, dst: NODE_B, ttl: 64, tos: 0, df: DfPolicy.Copy, id: 1 };

function ipEncap(s: Slot): void {
  sink = (sink + ipipEncap(s.buf, HEADROOM, s.len, IPIP)) & 0xffff;
}

function ipDecap(buf: Buffer, off: number, len: number): void {
  sink = (sink + ipipDecap(buf, off, len, ipip) + ipip.innerLen) & 0xffff;
}

interface Row {
  name: string;
  pps: number;
}
const rows: Row[] = [];
const suite = new Benchmark.Suite();
function add(name: string, fn: () => void): void {
  suite.add(
    name,
    () => {
      for (let i = 0; i < BATCH; i++) fn();
    },
    { maxTime: 1.5 },
  );
}

const tpl = Buffer.alloc(22);
vxlanWriteL3Template(tpl, 0, 1, VTEP_A, VTEP_B);

for (const size of [64, 1400]) {
  const a = slot(size);
  add(`VXLAN L3 encap (inner IP ${size} B, + source port)`, () => vxlanL3Encap(a));
  const at = slot(size);
  add(`VXLAN L3 encap from template (inner IP ${size} B, + source port)`, () => {
    const off = vxlanEncapL3Template(at.buf, HEADROOM, at.len, tpl, 0);
    sink =
      (sink +
        off +
        vxlanSourcePort(at.buf, off + 8, at.len + 14, VXLAN_SPORT_MIN, VXLAN_SPORT_MAX)) &
      0xffff;
  });
  const d = encapped(slot(size));
  add(`VXLAN L3 decap (inner IP ${size} B, + inner Eth/IPv4 parse)`, () => vxlanL3Decap(d));
  const l2 = encapped(slot(size - 14)); // an L2 frame of `size` bytes after the VXLAN header
  add(`VXLAN L2 encap (inner frame ${size} B, + source port)`, () =>
    vxlanL2Encap(l2.buf, l2.off + 8, size),
  );
  add(`VXLAN L2 decap (inner frame ${size} B, + inner Eth parse)`, () => vxlanL2Decap(l2));
  const p = slot(size);
  add(`IPIP encap (inner IP ${size} B)`, () => ipEncap(p));
  const q = slot(size);
  const qOff = ipipEncap(q.buf, HEADROOM, q.len, IPIP);
  add(`IPIP decap (inner IP ${size} B, both headers verified)`, () =>
    ipDecap(q.buf, qOff, q.len + 20),
  );
}
const ck = slot(1400);
add("Internet checksum, 1400 B", () => {
  sink = (sink + internetChecksum(ck.buf, HEADROOM, 1400)) & 0xffff;
});

suite.on("cycle", (ev: Benchmark.Event) => {
  const b = ev.target as unknown as Benchmark;
  rows.push({ name: String(b.name), pps: (b.hz ?? 0) * BATCH });
  process.stderr.write(`${b.name}: ${fmt((b.hz ?? 0) * BATCH)}/s\n`);
});
if (!process.env.ALLOC_ONLY) suite.run();

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`;
}

// --- heap growth over 10 M encap+decap operations
setFlagsFromString("--expose-gc");
const gc = (globalThis.gc ?? runInNewContext("gc")) as () => void;
const OPS = 10_000_000;
const hs = slot(64);
const hd = encapped(slot(64));
const hq = slot(64);
const hqOff = ipipEncap(hq.buf, HEADROOM, hq.len, IPIP);
function mixed(n: number): void {
  for (let i = 0; i < n; i += 4) {
    vxlanL3Encap(hs);
    vxlanL3Decap(hd);
    ipEncap(hq);
    ipDecap(hq.buf, hqOff, hq.len + 20);
  }
}
mixed(200_000); // warm up so optimized code is what is measured
let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
gc();
gc();
const before = process.memoryUsage().heapUsed;
obs.observe({ entryTypes: ["gc"] });
mixed(OPS);
// Let the observer deliver entries queued during the loop before reading the count.
await new Promise((r) => setTimeout(r, 50));
obs.disconnect();
gc();
gc();
const after = process.memoryUsage().heapUsed;

console.log("| operation | packets/s |");
console.log("|---|---:|");
for (const r of rows) console.log(`| ${r.name} | ${fmt(r.pps)} |`);
console.log();
console.log("| allocation check (10 M encap+decap ops: VXLAN L3 and IPIP, 64 B) | value |");
console.log("|---|---:|");
console.log(`| heapUsed after - before (after gc) | ${after - before} B |`);
console.log(`| GC events during the loop | ${gcs} |`);
if (sink === -1) console.log(sink); // keep the results alive
