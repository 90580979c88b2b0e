// Property tests for TSO segmentation (src/dataplane/offload/segment.ts) and TCP receive
// coalescing (src/dataplane/offload/coalesce.ts): segmenting any valid super-packet gives
// segments with valid IPv4 and TCP checksums whose payloads concatenate to the original;
// coalescing them gives back one packet with the original byte stream (and, once the
// kernel's partial checksum is completed, a valid TCP checksum). The addon's checksum
// loop agrees with the TypeScript one.
import fc from "fast-check";
import t from "tap";
import { Coalescer, MAX_GROUP_SEGMENTS } from "../../src/dataplane/offload/coalesce.js";
import { NativeSummer } from "../../src/dataplane/offload/fastpath.js";
import {
  completeChecksum,
  SUM_MANY,
  TsSummer,
  tcpChecksumOk,
  tsoHeaderLen,
  tsoSegmentCount,
} from "../../src/dataplane/offload/segment.js";
import { read16, read32, write32 } from "../../src/encap/bytes.js";
import { ipv4ChecksumOk } from "../../src/encap/ipv4.js";
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_LEN,
} from "../../src/tun/vnet.js";

import {
  bothSummers,
  build,
  Collect,
  IN,
  OUT,
  offerAll,
  PREFIX,
  refillL4Checksum,
  SCRATCH,
  SIZE,
  segmentAndGlue,
  spec,
  vnetHdr,
} from "../fixtures/super-packets.js";

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
        refillL4Checksum(u8, seg1, 6, read16(u8, seg1 + 2) - 20);
      }
      const sink = new Collect(u8);
      const co = new Coalescer(u8, summer, sink);
      const refused = offerAll(co, u8, n, stride);
      if (how === 0 || how === 3) return refused === 1 && (how !== 0 || co.badChecksum === 1);
      // Gap / other ACK: segment 0 goes alone, segment 1 starts a new group.
      return refused === 0 && sink.got.length >= 2 && sink.got[0].len === VNET_LEN + hdr + s.mss;
    }),
    { numRuns: 200, endOnFailure: true },
  );
  t.pass("corrupt, out-of-order, other-ACK and FIN segments are not merged");
});
