// Property tests for the offload fast path's byte work: TSO segmentation
// (src/dataplane/offload/segment.ts) and receive coalescing (src/dataplane/offload/coalesce.ts).
// Segmenting any valid super-packet (header blocks + payload left in place, in one pass
// or in rounds) gives segments with valid IPv4 and TCP checksums whose payloads
// concatenate to the original; coalescing those segments again gives
// back one packet (glued from its ranges, as the TUN's writev does) with the original
// byte stream (and, once the kernel's partial
// checksum is completed, a valid TCP checksum). The addon's checksum loop agrees with
// the TypeScript one.
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
  SUM_MANY,
  type Summer,
  superSegment,
  TsSummer,
  tcpChecksumOk,
  tsoHeaderLen,
  tsoPayloadLen,
  tsoPayloadOff,
  tsoSegmentCount,
  usoHeaderLen,
} from "../../src/dataplane/offload/segment.js";
import { read16, read32, write16, write32 } from "../../src/encap/bytes.js";
import { checksumFold, checksumSum, internetChecksum } from "../../src/encap/checksum.js";
import { ipv4ChecksumOk, ipv4PseudoHeaderSum } from "../../src/encap/ipv4.js";
import {
  newVnetHeader,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
  type VnetHeader,
  vnetRead,
} from "../../src/tun/vnet.js";

/** The virtio_net_hdr at `at`, read afresh (tests may allocate). */
function vnetHdr(u8: Uint8Array, at: number): VnetHeader {
  const h = newVnetHeader();
  vnetRead(u8, at, h);
  return h;
}

const PREFIX = 22;
const IN = 256;
/** Header blocks (superSegment's output). */
const HDRS = 80_000;
/** Segments glued back to back (what the receiver's datagrams hold). */
const OUT = 120_000;
/** Where Collect glues a coalesced packet's ranges (what the TUN's writev() reads). */
const GLUE = 180_000;
const SIZE = 250_000;
/** Where a TAP sink puts a coalesced frame's vnet header (a range of its own). */
const SCRATCH = 240_000;

interface Spec {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  win: number;
  id: number;
  tos: number;
  opts: number[];
  payload: Uint8Array;
  mss: number;
  psh: boolean;
}

const spec: fc.Arbitrary<Spec> = fc.record({
  src: fc.integer({ min: 1, max: 0xffffffff }),
  dst: fc.integer({ min: 1, max: 0xffffffff }),
  sport: fc.integer({ min: 1, max: 65535 }),
  dport: fc.integer({ min: 1, max: 65535 }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ack: fc.integer({ min: 0, max: 0xffffffff }),
  win: fc.integer({ min: 0, max: 65535 }),
  id: fc.integer({ min: 0, max: 65535 }),
  tos: fc.integer({ min: 0, max: 255 }),
  opts: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 10 }).map((a) => {
    const n = Math.ceil(a.length / 4) * 4;
    return [...a, ...new Array(n - a.length).fill(1)];
  }),
  // size "max": without it fast-check keeps arrays short, and a payload under one MSS
  // would never exercise segmenting into several segments or merging them again.
  payload: fc.uint8Array({ minLength: 1, maxLength: 20_000, size: "max" }),
  mss: fc.integer({ min: 64, max: 1460 }),
  psh: fc.boolean(),
});

/** Write the super-packet at IN; returns its length. */
function build(u8: Uint8Array, s: Spec): number {
  const thl = 20 + s.opts.length;
  const total = 20 + thl + s.payload.length;
  const ip = IN;
  u8[ip] = 0x45;
  u8[ip + 1] = s.tos;
  write16(u8, ip + 2, total);
  write16(u8, ip + 4, s.id);
  write16(u8, ip + 6, 0x4000);
  u8[ip + 8] = 64;
  u8[ip + 9] = 6;
  write16(u8, ip + 10, 0);
  write32(u8, ip + 12, s.src);
  write32(u8, ip + 16, s.dst);
  write16(u8, ip + 10, internetChecksum(u8, ip, 20));
  const tcp = ip + 20;
  write16(u8, tcp, s.sport);
  write16(u8, tcp + 2, s.dport);
  write32(u8, tcp + 4, s.seq);
  write32(u8, tcp + 8, s.ack);
  u8[tcp + 12] = (thl / 4) << 4;
  u8[tcp + 13] = 0x10 | (s.psh ? 0x08 : 0);
  write16(u8, tcp + 14, s.win);
  write16(u8, tcp + 16, 0);
  write16(u8, tcp + 18, 0);
  u8.set(s.opts, tcp + 20);
  u8.set(s.payload, tcp + thl);
  const sum =
    checksumSum(u8, tcp, thl + s.payload.length) +
    ipv4PseudoHeaderSum(u8, ip, 6, thl + s.payload.length);
  write16(u8, tcp + 16, ~checksumFold(sum) & 0xffff);
  return total;
}

/**
 * Segment the super-packet at IN and glue block k + payload k at OUT + k * stride, as
 * the sender's gather list does on the wire. Returns the segment count.
 */
function segmentAndGlue(
  u8: Uint8Array,
  total: number,
  hdr: number,
  mss: number,
  summer: Summer,
  round = 0xffff,
): number {
  for (let i = 0; i < PREFIX; i++) u8[HDRS + i] = 0xa0 + i;
  const hs = PREFIX + hdr;
  const payload = total - hdr;
  const segs = tsoSegmentCount(payload, mss);
  let n = 0;
  for (let first = 0; first < segs; first += round) {
    // Each round writes its blocks from HDRS on (prefix first), like the forwarder.
    const at = HDRS + first * hs;
    if (first > 0) u8.copyWithin(at, HDRS, HDRS + PREFIX);
    n += superSegment(u8, false, IN, total, hdr, mss, at, PREFIX, summer, first, round);
  }
  const stride = hs + mss;
  for (let k = 0; k < n; k++) {
    u8.copyWithin(OUT + k * stride, HDRS + k * hs, HDRS + (k + 1) * hs);
    const p = tsoPayloadOff(IN, hdr, mss, k);
    u8.copyWithin(OUT + k * stride + hs, p, p + tsoPayloadLen(payload, mss, k));
  }
  return n;
}

/** The TypeScript checksum loop and the addon's, over the same buffer. */
function bothSummers(buf: ArrayBuffer): [string, Summer][] {
  return [
    ["ts", new TsSummer(new Uint8Array(buf))],
    ["native", new NativeSummer(buf)],
  ];
}

class Collect implements VnetSink {
  /** Packets; `first` is where a gathered one's first range started (else -1). */
  readonly got: { off: number; len: number; first: number }[] = [];
  constructor(private readonly u8: Uint8Array) {}
  deviceVnet(_slot: number, off: number, len: number): void {
    this.got.push({ off, len, first: -1 });
  }
  deviceVnetGather(_slot: number, offs: Uint32Array, lens: Uint32Array, count: number): void {
    let at = GLUE;
    for (let i = 0; i < count; i++) {
      this.u8.copyWithin(at, offs[i], offs[i] + lens[i]);
      at += lens[i];
    }
    this.got.push({ off: GLUE, len: at - GLUE, first: offs[0] });
  }
  vnetScratch(): number {
    return SCRATCH;
  }
}

t.test("native checksum loop == TypeScript loop (sum and sumMany)", async (t) => {
  const buf = new ArrayBuffer(70_000);
  const u8 = new Uint8Array(buf);
  const nat = new NativeSummer(buf);
  const ts = new TsSummer(u8);
  // Lengths across the addon's vector loop (64 bytes a turn, 32 KB chunks) and its
  // tail, odd starts, and runs of 0xff (every lane and fold carrying). Both of the
  // addon's loops (AVX2 where the CPU has it, and the portable one) must agree.
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 3000, size: "max" }),
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: 0, max: 69_000 }).map((n) => new Uint8Array(n).fill(0xff)),
      ),
      fc.integer({ min: 0, max: 63 }),
      (data, at) => {
        u8.set(data, at);
        const want = ts.sum(at, data.length);
        if (nat.sum(at, data.length) !== want || nat.sumScalar(at, data.length) !== want)
          return false;
        const n = Math.min(SUM_MANY, 1 + (data.length % 7));
        for (let i = 0; i < n; i++) {
          nat.offs[i] = at + i;
          nat.lens[i] = Math.max(0, data.length - 2 * i);
        }
        nat.sumMany(n);
        for (let i = 0; i < n; i++)
          if (nat.out[i] !== ts.sum(at + i, Math.max(0, data.length - 2 * i))) return false;
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass("sums agree");
});

t.test("segment then coalesce gives back the same byte stream", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  for (const [name, summer] of bothSummers(buf)) {
    fc.assert(
      fc.property(spec, (s) => {
        u8.fill(0);
        const total = build(u8, s);
        const hdr = tsoHeaderLen(u8, IN, total);
        if (hdr !== 40 + s.opts.length) return false;
        // Header blocks in one pass or in rounds of `round` segments: the same bytes.
        const round = 1 + (s.seq % 7);
        const n = segmentAndGlue(u8, total, hdr, s.mss, summer, s.psh ? round : 0xffff);
        if (n !== tsoSegmentCount(s.payload.length, s.mss)) return false;
        // More segments than a group holds come back as several writes (not checked here).
        fc.pre(n <= MAX_GROUP_SEGMENTS);
        const stride = PREFIX + hdr + s.mss;
        // Every segment: prefix, lengths, id, seq, flags, both checksums; payloads in order.
        const stream: number[] = [];
        for (let k = 0; k < n; k++) {
          const seg = OUT + k * stride;
          for (let i = 0; i < PREFIX; i++) if (u8[seg + i] !== 0xa0 + i) return false;
          const ip = seg + PREFIX;
          const len = read16(u8, ip + 2);
          const chunk = Math.min(s.mss, s.payload.length - k * s.mss);
          if (len !== hdr + chunk) return false;
          if (!ipv4ChecksumOk(u8, ip, 20)) return false;
          if (read16(u8, ip + 4) !== ((s.id + k) & 0xffff)) return false;
          if (read32(u8, ip + 24) !== (s.seq + k * s.mss) >>> 0) return false;
          const last = k === n - 1;
          if (u8[ip + 33] !== (0x10 | (last && s.psh ? 0x08 : 0))) return false;
          if (!tcpChecksumOk(u8, ip, summer)) return false;
          for (let i = 0; i < chunk; i++) stream.push(u8[ip + hdr + i]);
        }
        if (!Buffer.from(stream).equals(Buffer.from(s.payload))) return false;

        // Coalesce them again, in place.
        const sink = new Collect(u8);
        const co = new Coalescer(u8, summer, sink);
        for (let k = 0; k < n; k++) {
          const ip = OUT + k * stride + PREFIX;
          if (!co.add(0, ip, read16(u8, ip + 2))) return false;
        }
        co.flush();
        if (sink.got.length !== 1) return false;
        const { off, len, first } = sink.got[0];
        const ip = off + VNET_LEN;
        const at = n === 1 ? off : first;
        if (at !== OUT + PREFIX - VNET_LEN || len !== total + VNET_LEN) return false;
        if (read16(u8, ip + 2) !== total || !ipv4ChecksumOk(u8, ip, 20)) return false;
        if (read32(u8, ip + 24) !== s.seq || u8[ip + 33] !== (0x10 | (s.psh ? 0x08 : 0)))
          return false;
        if (!Buffer.from(u8.subarray(ip + hdr, ip + total)).equals(Buffer.from(s.payload)))
          return false;
        if (!Buffer.from(u8.subarray(ip + 40, ip + hdr)).equals(Buffer.from(s.opts))) return false;
        if (n === 1)
          return vnetHdr(u8, off).flags === VNET_F_DATA_VALID && tcpChecksumOk(u8, ip, summer);
        if (
          vnetHdr(u8, off).flags !== VNET_F_NEEDS_CSUM ||
          vnetHdr(u8, off).gsoType !== VNET_GSO_TCPV4
        )
          return false;
        if (
          vnetHdr(u8, off).gsoSize !== s.mss ||
          (read16(u8, off + 2) !== 20 + hdr - 20 + 0 && false)
        )
          return false;
        if (u8[off + 2] + (u8[off + 3] << 8) !== hdr) return false;
        // What the kernel does with CHECKSUM_PARTIAL: complete it; it must then verify.
        if (
          !completeChecksum(
            u8,
            ip,
            total,
            vnetHdr(u8, off).csumStart,
            vnetHdr(u8, off).csumOffset,
            summer,
          )
        )
          return false;
        return tcpChecksumOk(u8, ip, summer);
      }),
      { numRuns: name === "ts" ? 150 : 300, endOnFailure: true },
    );
    t.pass(`${name}: segments valid, stream restored`);
  }
});

t.test("TAP (vxlan-l2): segmented frames coalesce into one frame, same stream", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  const summer = new NativeSummer(buf);
  const ETH = 14;
  fc.assert(
    fc.property(spec, fc.boolean(), (s, otherMac) => {
      u8.fill(0);
      const total = build(u8, s);
      const hdr = tsoHeaderLen(u8, IN, total);
      const n = segmentAndGlue(u8, total, hdr, s.mss, summer);
      fc.pre(n <= MAX_GROUP_SEGMENTS);
      const stride = PREFIX + hdr + s.mss;
      // Each segment is a frame: the last 14 prefix bytes are its Ethernet header.
      if (otherMac && n > 1) u8[OUT + stride + PREFIX - ETH + 3] ^= 1;
      const sink = new Collect(u8);
      const co = new Coalescer(u8, summer, sink, ETH);
      for (let k = 0; k < n; k++) {
        const ip = OUT + k * stride + PREFIX;
        if (!co.add(0, ip, read16(u8, ip + 2))) return false;
      }
      co.flush();
      // Segment 1 with another MAC address goes alone: segments 0, 1 and 2.. are apart.
      if (otherMac && n > 1) return sink.got.length === Math.min(n, 3);
      if (sink.got.length !== 1) return false;
      const { off, len, first } = sink.got[0];
      // Gathered: vnet header from the scratch range, then the first frame in place.
      if (first !== SCRATCH || len !== VNET_LEN + ETH + total) return false;
      for (let i = 0; i < ETH; i++)
        if (u8[off + VNET_LEN + i] !== 0xa0 + PREFIX - ETH + i) return false;
      const ip = off + VNET_LEN + ETH;
      if (read16(u8, ip + 2) !== total || !ipv4ChecksumOk(u8, ip, 20)) return false;
      if (!Buffer.from(u8.subarray(ip + hdr, ip + total)).equals(Buffer.from(s.payload)))
        return false;
      if (n === 1) return vnetHdr(u8, off).flags === VNET_F_DATA_VALID;
      // Offsets in the vnet header count from the frame: Ethernet comes first.
      if (
        vnetHdr(u8, off).flags !== VNET_F_NEEDS_CSUM ||
        vnetHdr(u8, off).gsoType !== VNET_GSO_TCPV4
      )
        return false;
      if (u8[off + 2] + (u8[off + 3] << 8) !== ETH + hdr || vnetHdr(u8, off).gsoSize !== s.mss)
        return false;
      const frame = off + VNET_LEN;
      if (vnetHdr(u8, off).csumStart !== ETH + 20) return false;
      if (
        !completeChecksum(
          u8,
          frame,
          ETH + total,
          vnetHdr(u8, off).csumStart,
          vnetHdr(u8, off).csumOffset,
          summer,
        )
      )
        return false;
      return tcpChecksumOk(u8, ip, summer);
    }),
    { numRuns: 300, endOnFailure: true },
  );
  t.pass("frames coalesced with their Ethernet header; a MAC change splits");
});

t.test("coalescing refuses what must stay apart", async (t) => {
  const buf = new ArrayBuffer(SIZE);
  const u8 = new Uint8Array(buf);
  const summer = new TsSummer(u8);
  fc.assert(
    fc.property(spec, fc.integer({ min: 0, max: 3 }), (s0, how) => {
      const s = {
        ...s0,
        payload:
          s0.payload.length < 2 * s0.mss + 1 ? new Uint8Array(2 * s0.mss + 1).fill(7) : s0.payload,
        psh: false,
      };
      u8.fill(0);
      const total = build(u8, s);
      const hdr = tsoHeaderLen(u8, IN, total);
      segmentAndGlue(u8, total, hdr, s.mss, summer);
      const stride = PREFIX + hdr + s.mss;
      const n = tsoSegmentCount(s.payload.length, s.mss);
      const seg1 = OUT + stride + PREFIX;
      if (how === 0) u8[seg1 + hdr] ^= 0xff; // corrupt payload: checksum fails
      if (how === 1) write32(u8, seg1 + 24, read32(u8, seg1 + 24) + 1); // gap
      if (how === 2) write32(u8, seg1 + 28, read32(u8, seg1 + 28) + 1); // other ACK
      if (how === 3) u8[seg1 + 33] |= 0x01; // FIN
      if (how !== 0) {
        // Keep the checksum valid so only the tested property differs.
        write16(u8, seg1 + 36, 0);
        const l4 = read16(u8, seg1 + 2) - 20;
        const sum = checksumSum(u8, seg1 + 20, l4) + ipv4PseudoHeaderSum(u8, seg1, 6, l4);
        write16(u8, seg1 + 36, ~checksumFold(sum) & 0xffff);
      }
      const sink = new Collect(u8);
      const co = new Coalescer(u8, summer, sink);
      let refused = 0;
      for (let k = 0; k < n; k++) {
        const ip = OUT + k * stride + PREFIX;
        if (!co.add(0, ip, read16(u8, ip + 2))) {
          co.flush();
          refused++;
        }
      }
      co.flush();
      if (how === 0 || how === 3) return refused === 1 && (how !== 0 || co.badChecksum === 1);
      // Gap / other ACK: segment 0 goes alone, segment 1 starts a new group.
      return refused === 0 && sink.got.length >= 2 && sink.got[0].len === VNET_LEN + hdr + s.mss;
    }),
    { numRuns: 200, endOnFailure: true },
  );
  t.pass("corrupt, out-of-order, other-ACK and FIN segments are not merged");
});

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
        for (let i = 0; i < PREFIX; i++) u8[HDRS + i] = 0xa0 + i;
        const segs = Math.ceil(payload.length / size);
        let n = 0;
        for (let first = 0; first < segs; first += round) {
          const at = HDRS + first * (PREFIX + hdr);
          if (first > 0) u8.copyWithin(at, HDRS, HDRS + PREFIX);
          n += superSegment(u8, true, IN, total, hdr, size, at, PREFIX, summer, first, round);
        }
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
      write16(u8, seg1 + 26, 0);
      const sum = checksumSum(u8, seg1 + 20, 1008) + ipv4PseudoHeaderSum(u8, seg1, 17, 1008);
      write16(u8, seg1 + 26, ~checksumFold(sum) & 0xffff);
    }
    const sink = new Keep(u8);
    const co = new Coalescer(u8, summer, sink, 0, true);
    let no = 0;
    for (let k = 0; k < n; k++) {
      const ip = OUT + k * stride + PREFIX;
      if (!co.add(0, ip, read16(u8, ip + 2))) {
        co.flush();
        no++;
      }
    }
    co.flush();
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
function v6PseudoSum(u8: Uint8Array, ip: number, proto: number, l4len: number): number {
  const ph = new Uint8Array(40);
  ph.set(u8.subarray(ip + 8, ip + 40), 0);
  write32(ph, 32, l4len);
  ph[39] = proto;
  return checksumSum(ph, 0, 40);
}

t.test(
  "TSO6/USO6: IPv6 super-frames become segments with valid checksums, and coalesce back into one frame",
  async (t) => {
    const buf = new ArrayBuffer(SIZE);
    const u8 = new Uint8Array(buf);
    for (const [name, summer] of bothSummers(buf)) {
      fc.assert(
        fc.property(
          spec,
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.integer({ min: 0, max: 0xfffff }),
          fc.boolean(),
          // Extension headers in front of TCP/UDP: an optional hop-by-hop options
          // header, then up to two destination options headers ((len + 1) * 8 bytes).
          fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
          fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
          (s, addrs, flow, udp, hbh, dst) => {
            u8.fill(0);
            // IPv6, its extension headers, then TCP (with the spec's options) or UDP, the
            // payload behind.
            const ip = IN;
            const exts = [...(hbh === undefined ? [] : [[0, hbh]]), ...dst.map((n) => [60, n])];
            const xl = exts.reduce((a, [, n]) => a + (n + 1) * 8, 0);
            const l4h = udp ? 8 : 20 + s.opts.length;
            const l4len = l4h + s.payload.length;
            fc.pre(40 + xl + l4len <= 65535);
            u8[ip] = 0x60 | (s.tos >>> 4);
            u8[ip + 1] = ((s.tos & 0x0f) << 4) | (flow >>> 16);
            write16(u8, ip + 2, flow & 0xffff);
            write16(u8, ip + 4, xl + l4len);
            u8[ip + 6] = exts.length > 0 ? exts[0][0] : udp ? 17 : 6;
            u8[ip + 7] = 64;
            u8.set(addrs, ip + 8);
            let x = ip + 40;
            for (const [i, [, n]] of exts.entries()) {
              u8[x] = i + 1 < exts.length ? exts[i + 1][0] : udp ? 17 : 6;
              u8[x + 1] = n;
              for (let j = 2; j < (n + 1) * 8; j++) u8[x + j] = (j * 7 + i + flow) & 0xff;
              x += (n + 1) * 8;
            }
            const l4 = x;
            write16(u8, l4, s.sport);
            write16(u8, l4 + 2, s.dport);
            if (udp) {
              write16(u8, l4 + 4, l4len);
            } else {
              write32(u8, l4 + 4, s.seq);
              write32(u8, l4 + 8, s.ack);
              u8[l4 + 12] = (l4h / 4) << 4;
              u8[l4 + 13] = 0x10 | (s.psh ? 0x08 : 0);
              write16(u8, l4 + 14, s.win);
              u8.set(s.opts, l4 + 20);
            }
            u8.set(s.payload, l4 + l4h);
            const total = 40 + xl + l4len;
            const hdr = udp ? usoHeaderLen(u8, IN, total) : tsoHeaderLen(u8, IN, total);
            if (hdr !== 40 + xl + l4h) return false;
            const size = s.mss;
            const segs = tsoSegmentCount(s.payload.length, size);
            // The header blocks and the glued segments must fit their regions.
            fc.pre(
              HDRS + segs * (PREFIX + hdr) <= OUT && OUT + segs * (PREFIX + hdr + size) <= GLUE,
            );
            const round = 1 + (s.seq % 7);
            for (let i = 0; i < PREFIX; i++) u8[HDRS + i] = 0xa0 + i;
            let n = 0;
            for (let first = 0; first < segs; first += round) {
              const at = HDRS + first * (PREFIX + hdr);
              if (first > 0) u8.copyWithin(at, HDRS, HDRS + PREFIX);
              n += superSegment(u8, udp, IN, total, hdr, size, at, PREFIX, summer, first, round);
            }
            if (n !== segs) return false;
            const got: number[] = [];
            // Each segment glued (block + payload) at OUT + k * stride, as a receiver holds
            // them; the last 14 prefix bytes play its Ethernet header.
            const stride = PREFIX + hdr + size;
            for (let k = 0; k < n; k++) {
              const blk = HDRS + k * (PREFIX + hdr);
              for (let i = 0; i < PREFIX; i++) if (u8[blk + i] !== 0xa0 + i) return false;
              const seg = OUT + k * stride + PREFIX;
              u8.copyWithin(seg - PREFIX, blk, blk + PREFIX + hdr);
              const chunk = tsoPayloadLen(s.payload.length, size, k);
              const p = tsoPayloadOff(IN, hdr, size, k);
              u8.copyWithin(seg + hdr, p, p + chunk);
              // The IPv6 header unchanged but for its payload length; the extension
              // headers copied as they were.
              if (read16(u8, seg + 4) !== xl + l4h + chunk) return false;
              for (const i of [0, 1, 2, 3, 6, 7]) if (u8[seg + i] !== u8[ip + i]) return false;
              if (!Buffer.from(u8.subarray(seg + 8, seg + 40)).equals(Buffer.from(addrs)))
                return false;
              const sx = Buffer.from(u8.subarray(seg + 40, seg + 40 + xl));
              if (!sx.equals(Buffer.from(u8.subarray(ip + 40, ip + 40 + xl)))) return false;
              const sl4 = seg + 40 + xl;
              if (udp) {
                if (read16(u8, sl4 + 4) !== 8 + chunk || read16(u8, sl4 + 6) === 0) return false;
              } else {
                if (read32(u8, sl4 + 4) !== (s.seq + k * size) >>> 0) return false;
                const last = k === n - 1;
                if (u8[sl4 + 13] !== (0x10 | (last && s.psh ? 0x08 : 0))) return false;
              }
              const sum =
                checksumSum(u8, sl4, l4h + chunk) + v6PseudoSum(u8, seg, udp ? 17 : 6, l4h + chunk);
              if (checksumFold(sum) !== 0xffff) return false;
              for (let i = 0; i < chunk; i++) got.push(u8[seg + hdr + i]);
            }
            if (!Buffer.from(got).equals(Buffer.from(s.payload))) return false;
            const ETH = 14;
            const sink = new Collect(u8);
            const co = new Coalescer(u8, summer, sink, ETH, true);
            // Segments behind extension headers are not merged: each is written alone.
            if (xl > 0) return !co.add(0, OUT + PREFIX, 40 + read16(u8, OUT + PREFIX + 4));
            if (n > MAX_GROUP_SEGMENTS) return true;
            // The frames merge again into one TCPv6 or UDP_L4 GSO frame, the same stream.
            for (let k = 0; k < n; k++) {
              const seg = OUT + k * stride + PREFIX;
              if (!co.add(0, seg, 40 + read16(u8, seg + 4))) return false;
            }
            co.flush();
            if (sink.got.length !== 1) return false;
            const { off, len } = sink.got[0];
            if (len !== VNET_LEN + ETH + total) return false;
            const frame = off + VNET_LEN;
            const mip = frame + ETH;
            if (read16(u8, mip + 4) !== l4len) return false;
            if (!Buffer.from(u8.subarray(mip + hdr, mip + total)).equals(Buffer.from(s.payload)))
              return false;
            if (n === 1) return vnetHdr(u8, off).flags === VNET_F_DATA_VALID;
            const type = udp ? VNET_GSO_UDP_L4 : VNET_GSO_TCPV6;
            if (vnetHdr(u8, off).flags !== VNET_F_NEEDS_CSUM || vnetHdr(u8, off).gsoType !== type)
              return false;
            if (u8[off + 2] + (u8[off + 3] << 8) !== ETH + hdr || vnetHdr(u8, off).gsoSize !== size)
              return false;
            if (vnetHdr(u8, off).csumStart !== ETH + 40) return false;
            const cs = vnetHdr(u8, off).csumStart;
            if (!completeChecksum(u8, frame, ETH + total, cs, vnetHdr(u8, off).csumOffset, summer))
              return false;
            const proto = udp ? 17 : 6;
            if (udp && read16(u8, mip + 44) !== l4len) return false;
            return (
              checksumFold(
                checksumSum(u8, mip + 40, l4len) + v6PseudoSum(u8, mip, proto, l4len),
              ) === 0xffff
            );
          },
        ),
        { numRuns: name === "ts" ? 100 : 200, endOnFailure: true },
      );
      t.pass(`${name}: payload lengths, sequence numbers, flags, checksums; stream restored`);
    }
    // Extension headers the segmenter does not step over, or that do not fit.
    const chain = (...h: [number, number][]) => {
      u8.fill(0);
      u8[IN] = 0x60;
      write16(u8, IN + 4, 100);
      u8[IN + 6] = h[0][0];
      let x = IN + 40;
      for (const [i, [, n]] of h.entries()) {
        u8[x] = i + 1 < h.length ? h[i + 1][0] : 6;
        u8[x + 1] = n;
        x += (n + 1) * 8;
      }
      u8[x + 12] = 5 << 4; // TCP data offset 20
      return tsoHeaderLen(u8, IN, 140);
    };
    t.equal(chain([0, 0]), 68, "hop-by-hop, then TCP: cut (40 + 8 + 20 bytes of headers)");
    t.equal(chain([60, 1], [60, 0]), 84, "two destination options headers: cut");
    t.equal(chain([43, 0]), 0, "routing header (final destination in the pseudo-header): refused");
    t.equal(chain([44, 0]), 0, "fragment header: refused");
    t.equal(chain([60, 0], [0, 0]), 0, "hop-by-hop not first: refused");
    t.equal(chain([60, 0], [60, 0], [60, 0], [60, 0]), 92, "four options headers: cut");
    t.equal(
      chain([60, 0], [60, 0], [60, 0], [60, 0], [60, 0]),
      0,
      "five (longer than a valid chain and its slack): refused",
    );
    t.equal(chain([60, 10]), 0, "an options header running past the packet: refused");
  },
);
