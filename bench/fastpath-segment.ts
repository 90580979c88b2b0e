// Micro-benchmark of the fast path's per-byte work (no namespaces, no root): TSO
// segmentation of a 60 KB super-packet (MSS 1398) and coalescing its segments again,
// with the addon's checksum loop and with the TypeScript one. Prints µs per
// super-packet. `node --import tsx bench/fastpath-segment.ts [iterations]`

import { Coalescer, type VnetSink } from "../src/dataplane/offload/coalesce.js";
import { NativeSummer } from "../src/dataplane/offload/fastpath.js";
import {
  type Summer,
  superSegment,
  TsSummer,
  tsoHeaderLen,
  tsoPayloadLen,
  tsoPayloadOff,
} from "../src/dataplane/offload/segment.js";
import { read16, write16, write32 } from "../src/encap/bytes.js";
import { checksumFold, checksumSum, internetChecksum } from "../src/encap/checksum.js";
import { ipv4PseudoHeaderSum } from "../src/encap/ipv4.js";

const iters = Number(process.argv[2] ?? 5000);
const buf = new ArrayBuffer(1 << 18);
const u8 = new Uint8Array(buf);
const IN = 256;
const OUT = 70_000;
const GLUE = 80_000;
const MSS = 1398;
const PAYLOAD = 58_716;
const THL = 32;

function build(): number {
  const total = 20 + THL + PAYLOAD;
  u8[IN] = 0x45;
  write16(u8, IN + 2, total);
  write16(u8, IN + 6, 0x4000);
  u8[IN + 8] = 64;
  u8[IN + 9] = 6;
  write32(u8, IN + 12, 0x0af40101);
  write32(u8, IN + 16, 0x0af40201);
  write16(u8, IN + 10, internetChecksum(u8, IN, 20));
  const tcp = IN + 20;
  write16(u8, tcp, 5201);
  write16(u8, tcp + 2, 40000);
  write32(u8, tcp + 4, 12345);
  write32(u8, tcp + 8, 999);
  u8[tcp + 12] = (THL / 4) << 4;
  u8[tcp + 13] = 0x18;
  for (let i = 0; i < PAYLOAD; i++) u8[tcp + THL + i] = (i * 7) & 0xff;
  const s = checksumSum(u8, tcp, THL + PAYLOAD) + ipv4PseudoHeaderSum(u8, IN, 6, THL + PAYLOAD);
  write16(u8, tcp + 16, ~checksumFold(s) & 0xffff);
  return total;
}

class Null implements VnetSink {
  n = 0;
  deviceVnet(): void {
    this.n++;
  }
  deviceVnetGather(): void {
    this.n++;
  }
  vnetScratch(): number {
    return -1;
  }
}

/** Segment k (header block + payload) back to back at GLUE, as a receiver gets them. */
function glue(hdr: number, n: number): void {
  const hs = 22 + hdr;
  for (let k = 0; k < n; k++) {
    const at = GLUE + k * (hs + MSS);
    u8.copyWithin(at, OUT + k * hs, OUT + (k + 1) * hs);
    const p = tsoPayloadOff(IN, hdr, MSS, k);
    u8.copyWithin(at + hs, p, p + tsoPayloadLen(PAYLOAD, MSS, k));
  }
}

function run(name: string, summer: Summer): void {
  const total = build();
  const hdr = tsoHeaderLen(u8, IN, total);
  const sink = new Null();
  const co = new Coalescer(u8, summer, sink);
  const stride = 22 + hdr + MSS;
  const n = Math.ceil(PAYLOAD / MSS);
  let seg = 0;
  let coal = 0;
  for (let it = 0; it < iters; it++) {
    const t0 = process.hrtime.bigint();
    superSegment(u8, false, IN, total, hdr, MSS, OUT, 22, summer);
    const t1a = process.hrtime.bigint();
    glue(hdr, n);
    const t1 = process.hrtime.bigint();
    for (let k = 0; k < n; k++) {
      const ip = GLUE + k * stride + 22;
      co.add(0, ip, read16(u8, ip + 2));
    }
    co.flush();
    const t2 = process.hrtime.bigint();
    if (it >= iters / 5) {
      seg += Number(t1a - t0);
      coal += Number(t2 - t1);
    }
  }
  const m = iters - Math.floor(iters / 5);
  console.log(
    `${name}: segment ${(seg / m / 1000).toFixed(1)} µs, coalesce ${(coal / m / 1000).toFixed(1)} µs per 60 KB super-packet (${n} segments); merged writes ${co.mergedWrites}`,
  );
}

run("addon checksum", new NativeSummer(buf));
run("TypeScript checksum", new TsSummer(u8));
