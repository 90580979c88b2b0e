// Property tests for USO: a UDP super-packet becomes the sender's datagrams with valid
// checksums, and received datagrams merge back into UDP_L4 writes that hold the same
// datagrams; what must stay apart does.
import fc from "fast-check";
import t from "tap";
import {
  Coalescer,
  MAX_GROUP_SEGMENTS,
  type VnetSink,
} from "../../src/dataplane/offload/coalesce.js";
import { NativeSummer } from "../../src/dataplane/offload/fastpath.js";
import {
  completeChecksum,
  type Summer,
  superSegment,
  TsSummer,
  tsoPayloadLen,
  tsoPayloadOff,
  usoHeaderLen,
} from "../../src/dataplane/offload/segment.js";
import { read16, write16, write32 } from "../../src/encap/bytes.js";
import { checksumFold, checksumSum, internetChecksum } from "../../src/encap/checksum.js";
import { ipv4ChecksumOk, ipv4PseudoHeaderSum } from "../../src/encap/ipv4.js";
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_UDP_L4,
  VNET_LEN,
} from "../../src/tun/vnet.js";

import {
  bothSummers,
  GLUE,
  HDRS,
  IN,
  OUT,
  offerAll,
  PREFIX,
  refillL4Checksum,
  SCRATCH,
  SIZE,
  segmentInRounds,
  vnetHdr,
} from "../fixtures/super-packets.js";

t.test("USO: a UDP super-packet becomes the sender's datagrams, checksums valid", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  const summer = new NativeSummer(buf);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 30_000 }),
      fc.integer({ min: 1, max: 1472 }),
      fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: 1, max: 9 }),
      (payload, size, id, round) => {
        u8.fill(0);
        const total = buildUdp(u8, payload, id);
        const hdr = usoHeaderLen(u8, IN, total);
        if (hdr !== 28) return false;
        const segs = Math.ceil(payload.length / size);
        const n = segmentInRounds(u8, true, total, hdr, size, summer, segs, round);
        if (n !== segs) return false;
        const got: number[] = [];
        for (let k = 0; k < n; k++) {
          const blk = HDRS + k * (PREFIX + hdr);
          for (let i = 0; i < PREFIX; i++) if (u8[blk + i] !== 0xa0 + i) return false;
          // Glue block + payload as the receiver sees one datagram.
          const seg = OUT;
          u8.copyWithin(seg, blk + PREFIX, blk + PREFIX + hdr);
          const chunk = tsoPayloadLen(payload.length, size, k);
          if (chunk !== (k < n - 1 ? size : payload.length - (n - 1) * size)) return false;
          const p = tsoPayloadOff(IN, hdr, size, k);
          u8.copyWithin(seg + hdr, p, p + chunk);
          if (read16(u8, seg + 2) !== hdr + chunk || !ipv4ChecksumOk(u8, seg, 20)) return false;
          if (read16(u8, seg + 4) !== ((id + k) & 0xffff)) return false;
          if (read16(u8, seg + 24) !== 8 + chunk || read16(u8, seg + 26) === 0) return false;
          const l4 = 8 + chunk;
          const sum = checksumSum(u8, seg + 20, l4) + ipv4PseudoHeaderSum(u8, seg, 17, l4);
          if (checksumFold(sum) !== 0xffff) return false;
          for (let i = 0; i < chunk; i++) got.push(u8[seg + hdr + i]);
        }
        return Buffer.from(got).equals(Buffer.from(payload));
      },
    ),
    { numRuns: 200 },
  );
  t.pass("datagram sizes, lengths, ids and checksums as the sender's UDP_SEGMENT would give");
});

/** A UDP super-packet (what a UDP_SEGMENT send puts on the TUN) at IN; its length. */
function buildUdp(u8: Uint8Array, payload: Uint8Array, id: number): number {
  const total = 28 + payload.length;
  const ip = IN;
  u8[ip] = 0x45;
  write16(u8, ip + 2, total);
  write16(u8, ip + 4, id);
  u8[ip + 8] = 64;
  u8[ip + 9] = 17;
  write32(u8, ip + 12, 0x0af40101);
  write32(u8, ip + 16, 0xc0a80102);
  write16(u8, ip + 10, internetChecksum(u8, ip, 20));
  write16(u8, ip + 20, 4433);
  write16(u8, ip + 22, 443);
  write16(u8, ip + 24, total - 20);
  u8.set(payload, ip + 28);
  return total;
}

/**
 * Cut the UDP super-packet at IN into datagrams of `size` (superSegment) and glue each
 * back to back at OUT + k * stride (prefix, headers, payload), as the receiver's
 * datagrams hold them. Returns the count and the stride.
 */
function usoSegmentAndGlue(
  u8: Uint8Array,
  total: number,
  size: number,
  summer: Summer,
): { n: number; stride: number } {
  for (let i = 0; i < PREFIX; i++) u8[HDRS + i] = 0xa0 + i;
  const hdr = 28;
  const n = superSegment(u8, true, IN, total, hdr, size, HDRS, PREFIX, summer);
  const stride = PREFIX + hdr + size;
  for (let k = 0; k < n; k++) {
    u8.copyWithin(OUT + k * stride, HDRS + k * (PREFIX + hdr), HDRS + (k + 1) * (PREFIX + hdr));
    const p = tsoPayloadOff(IN, hdr, size, k);
    u8.copyWithin(OUT + k * stride + PREFIX + hdr, p, p + tsoPayloadLen(total - hdr, size, k));
  }
  return { n, stride };
}

/** A sink that keeps a copy of every packet written (a gathered one glued). */
class Keep implements VnetSink {
  readonly got: Uint8Array[] = [];
  constructor(private readonly u8: Uint8Array) {}
  deviceVnet(_slot: number, off: number, len: number): void {
    this.got.push(this.u8.slice(off, off + len));
  }
  deviceVnetGather(_slot: number, offs: Uint32Array, lens: Uint32Array, count: number): void {
    const parts: number[] = [];
    for (let i = 0; i < count; i++) parts.push(...this.u8.subarray(offs[i], offs[i] + lens[i]));
    this.got.push(Uint8Array.from(parts));
  }
  vnetScratch(): number {
    return SCRATCH;
  }
}

t.test("USO: datagrams merge into UDP_L4 writes that hold the same datagrams", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  for (const [name, summer] of bothSummers(buf)) {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 30_000, size: "max" }),
        fc.integer({ min: 40, max: 1472 }),
        fc.integer({ min: 0, max: 65535 }),
        (payload, size, id) => {
          // Header blocks and glued datagrams must fit their regions of the buffer.
          const segs = Math.ceil(payload.length / size);
          fc.pre(segs * (PREFIX + 28) <= OUT - HDRS && segs * (PREFIX + 28 + size) <= GLUE - OUT);
          u8.fill(0);
          const total = buildUdp(u8, payload, id);
          const { n, stride } = usoSegmentAndGlue(u8, total, size, summer);
          const sink = new Keep(u8);
          const co = new Coalescer(u8, summer, sink, 0, true);
          for (let k = 0; k < n; k++) {
            const ip = OUT + k * stride + PREFIX;
            if (!co.add(0, ip, read16(u8, ip + 2))) return false;
          }
          co.flush();
          // A group holds at most MAX_GROUP_SEGMENTS datagrams; every write but the
          // last holds that many.
          if (sink.got.length !== Math.ceil(n / MAX_GROUP_SEGMENTS)) return false;
          const stream: number[] = [];
          for (const [w, p] of sink.got.entries()) {
            const dgrams = Math.min(MAX_GROUP_SEGMENTS, n - w * MAX_GROUP_SEGMENTS);
            const ip = VNET_LEN;
            const l4 = p.length - VNET_LEN - 20;
            if (read16(p, ip + 2) !== 20 + l4 || !ipv4ChecksumOk(p, ip, 20)) return false;
            if (read16(p, ip + 20) !== 4433 || read16(p, ip + 24) !== l4) return false;
            const ps = new TsSummer(p);
            if (dgrams === 1) {
              // Alone: written as it came, checksum verified, DATA_VALID.
              if (vnetHdr(p, 0).flags !== VNET_F_DATA_VALID || vnetHdr(p, 0).gsoType !== 0)
                return false;
              const sum = ps.sum(ip + 20, l4) + ipv4PseudoHeaderSum(p, ip, 17, l4);
              if (checksumFold(sum) !== 0xffff) return false;
            } else {
              if (vnetHdr(p, 0).flags !== VNET_F_NEEDS_CSUM) return false;
              if (vnetHdr(p, 0).gsoType !== VNET_GSO_UDP_L4 || vnetHdr(p, 0).gsoSize !== size)
                return false;
              if (p[2] + (p[3] << 8) !== 28) return false;
              if (vnetHdr(p, 0).csumStart !== 20 || vnetHdr(p, 0).csumOffset !== 6) return false;
              // The datagrams it holds: all `size` bytes but a shorter last.
              if (Math.ceil((l4 - 8) / size) !== dgrams) return false;
              // What the kernel does with CHECKSUM_PARTIAL: complete it; it must verify.
              if (!completeChecksum(p, ip, 20 + l4, 20, 6, ps)) return false;
              const sum = ps.sum(ip + 20, l4) + ipv4PseudoHeaderSum(p, ip, 17, l4);
              if (checksumFold(sum) !== 0xffff) return false;
            }
            for (let i = 28; i < 20 + l4; i++) stream.push(p[ip + i]);
          }
          return Buffer.from(stream).equals(Buffer.from(payload));
        },
      ),
      { numRuns: name === "ts" ? 100 : 200, endOnFailure: true },
    );
    t.pass(`${name}: one write per ${MAX_GROUP_SEGMENTS} datagrams, sizes and payload kept`);
  }
});

t.test("USO merging refuses what must stay apart", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  const summer = new TsSummer(u8);
  const payload = new Uint8Array(5 * 1000).map((_, i) => i * 7);
  const cases: [string, (ip: number) => void, number, number][] = [
    // [what, change to datagram 1, datagrams refused, writes]
    ["a corrupt payload", (ip) => (u8[ip + 40] ^= 0xff), 1, 2],
    ["no checksum (0)", (ip) => write16(u8, ip + 26, 0), 1, 2],
    ["another source port", (ip) => write16(u8, ip + 20, 4434), 0, 3],
    ["another TTL", (ip) => (u8[ip + 8] = 63), 0, 3],
  ];
  for (const [what, change, refused, writes] of cases) {
    u8.fill(0);
    const total = buildUdp(u8, payload, 1);
    const { n, stride } = usoSegmentAndGlue(u8, total, 1000, summer);
    const seg1 = OUT + stride + PREFIX;
    change(seg1);
    if (what !== "a corrupt payload" && what !== "no checksum (0)") {
      // Keep both checksums valid, so that only the tested property differs.
      write16(u8, seg1 + 10, 0);
      write16(u8, seg1 + 10, internetChecksum(u8, seg1, 20));
      refillL4Checksum(u8, seg1, 17, 1008);
    }
    const sink = new Keep(u8);
    const co = new Coalescer(u8, summer, sink, 0, true);
    const no = offerAll(co, u8, n, stride);
    t.equal(no, refused, `${what}: ${refused} refused`);
    t.equal(sink.got.length, writes, `${what}: ${writes} writes around it`);
    if (what === "a corrupt payload") t.equal(co.badChecksum, 1, "counted as a bad checksum");
  }
  // Without USO on the device nothing UDP is taken.
  u8.fill(0);
  const total = buildUdp(u8, payload, 1);
  const { stride } = usoSegmentAndGlue(u8, total, 1000, summer);
  const co = new Coalescer(u8, summer, new Keep(u8), 0, false);
  t.notOk(co.add(0, OUT + PREFIX, read16(u8, OUT + PREFIX + 2)), "udp off: refused");
  t.ok(stride > 0);
});

/** The RFC 8200 §8.1 pseudo-header of the IPv6 packet at `ip`, as bytes, then summed. */
