// Property tests for TSO6/USO6 on the TAP: IPv6 super-frames (with hop-by-hop and
// destination options headers) become segments with valid checksums and coalesce back
// into one frame.
import fc from "fast-check";
import t from "tap";
import { Coalescer, MAX_GROUP_SEGMENTS } from "../../src/dataplane/offload/coalesce.js";
import {
  completeChecksum,
  tsoHeaderLen,
  tsoPayloadLen,
  tsoPayloadOff,
  tsoSegmentCount,
  usoHeaderLen,
} from "../../src/dataplane/offload/segment.js";
import { read16, read32, write16, write32 } from "../../src/encap/bytes.js";
import { checksumFold, checksumSum } from "../../src/encap/checksum.js";
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_LEN,
} from "../../src/tun/vnet.js";

import {
  bothSummers,
  Collect,
  GLUE,
  HDRS,
  IN,
  OUT,
  PREFIX,
  SIZE,
  segmentInRounds,
  spec,
  vnetHdr,
} from "../fixtures/super-packets.js";

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
            const n = segmentInRounds(u8, udp, total, hdr, size, summer, segs, round);
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
