// Property tests: every decoder, fed random or mutated bytes, returns 0 or a defined
// Drop code, never throws and never touches a byte outside buf[off..off+len); and
// every encoder's output decodes back to what it was given.

import fc from "fast-check";
import t from "tap";
import { arpParse, arpWrite, newArpInfo } from "../../src/encap/arp.js";
import { checksumUpdate16, internetChecksum, pseudoHeaderSum } from "../../src/encap/checksum.js";
import { Drop, isDropCode } from "../../src/encap/drop.js";
import {
  ethernetParse,
  ethernetWrite,
  ethernetWriteVlan,
  newEthernetInfo,
} from "../../src/encap/ethernet.js";
import { icmpParse, icmpWriteEcho, icmpWriteError, newIcmpInfo } from "../../src/encap/icmp.js";
import { DfPolicy, ipipDecap, ipipEncap, newIpipInfo } from "../../src/encap/ipip.js";
import {
  ipv4ChecksumOk,
  ipv4DecrementTtl,
  ipv4Parse,
  ipv4PseudoHeaderSum,
  ipv4Write,
  newIpv4Info,
} from "../../src/encap/ipv4.js";
import {
  newOuterInfo,
  newOuterParams,
  outerDecapUdp,
  outerDecapUdpIp,
  outerEncapUdp,
} from "../../src/encap/outer.js";
import {
  newTcpInfo,
  tcpChecksumOk,
  tcpFillChecksum,
  tcpParse,
  tcpWrite,
} from "../../src/encap/tcp.js";
import {
  newUdpInfo,
  udpChecksumOk,
  udpFillChecksum,
  udpParse,
  udpWrite,
} from "../../src/encap/udp.js";
import {
  newVxlanInfo,
  vxlanDecap,
  vxlanEncapL2,
  vxlanEncapL3,
  vxlanSourcePort,
} from "../../src/encap/vxlan.js";
import {
  fragNeededFrame,
  ipipFrame,
  outer,
  DfPolicy as P,
  vxlanArpFrame,
  vxlanL3Frame,
} from "../fixtures/packets.js";

const RUNS = 1000;

/** A view that throws on any index outside [lo, hi): out-of-bounds reads become failures. */
function guarded(buf: Uint8Array, lo: number, hi: number): Uint8Array {
  return new Proxy(buf, {
    get(target, key) {
      if (typeof key === "string" && /^\d+$/.test(key)) {
        const i = Number(key);
        if (i < lo || i >= hi) throw new Error(`read at ${i} outside [${lo}, ${hi})`);
        return target[i];
      }
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
    set(target, key, value) {
      if (typeof key === "string" && /^\d+$/.test(key)) {
        throw new Error(`decoder wrote at ${key}`);
      }
      return Reflect.set(target, key, value, target);
    },
  });
}

// One reusable result per decoder, like a pipeline stage.
const eth = newEthernetInfo();
const arp = newArpInfo();
const ip = newIpv4Info();
const udp = newUdpInfo();
const tcp = newTcpInfo();
const icmp = newIcmpInfo();
const vx = newVxlanInfo();
const ipip = newIpipInfo();
const out = newOuterInfo();

type Decoder = (b: Uint8Array, off: number, len: number) => number;
const decoders: Record<string, Decoder> = {
  ethernet: (b, o, l) => ethernetParse(b, o, l, eth),
  arp: (b, o, l) => arpParse(b, o, l, arp),
  ipv4: (b, o, l) => ipv4Parse(b, o, l, ip),
  udp: (b, o, l) => udpParse(b, o, l, udp),
  tcp: (b, o, l) => tcpParse(b, o, l, tcp),
  icmp: (b, o, l) => icmpParse(b, o, l, icmp),
  vxlan: (b, o, l) => vxlanDecap(b, o, l, vx),
  ipip: (b, o, l) => ipipDecap(b, o, l, ipip),
  outerUdp: (b, o, l) => outerDecapUdp(b, o, l, out),
  outerUdpIp: (b, o, l) => outerDecapUdpIp(b, o, l, out),
  // A whole receive path: outer headers, VXLAN, inner Ethernet, inner IPv4, L4 + checksum.
  vxlanPath: (b, o, l) => {
    let c = outerDecapUdp(b, o, l, out);
    if (c) return c;
    c = vxlanDecap(b, out.payloadOff, out.payloadLen, vx);
    if (c) return c;
    const p = vxlanSourcePort(b, vx.innerOff, vx.innerLen, 32768, 60998);
    if (p < 32768 || p > 60998) throw new Error(`source port ${p}`);
    c = ethernetParse(b, vx.innerOff, vx.innerLen, eth);
    if (c) return c;
    if (eth.ethertype === 0x0806) return arpParse(b, eth.payloadOff, eth.payloadLen, arp);
    c = ipv4Parse(b, eth.payloadOff, eth.payloadLen, ip);
    if (c) return c;
    return l4(b);
  },
  ipipPath: (b, o, l) => {
    const c = ipipDecap(b, o, l, ipip);
    if (c) return c;
    ip.src = ipip.inner.src;
    ip.dst = ipip.inner.dst;
    ip.protocol = ipip.inner.protocol;
    ip.payloadOff = ipip.inner.payloadOff;
    ip.payloadLen = ipip.inner.payloadLen;
    ip.hdrLen = ipip.inner.hdrLen;
    return l4(b);
  },
  sourcePort: (b, o, l) => {
    const p = vxlanSourcePort(b, o, l, 1000, 1009);
    if (p < 1000 || p > 1009) throw new Error(`source port ${p}`);
    return 0;
  },
};

function l4(b: Uint8Array): number {
  const { protocol: p, payloadOff: off, payloadLen: len } = ip;
  if (p === 1) return icmpParse(b, off, len, icmp);
  if (p !== 6 && p !== 17) return 0;
  const c = p === 17 ? udpParse(b, off, len, udp) : tcpParse(b, off, len, tcp);
  if (c) return c;
  // UDP sums the bytes its length field names; TCP the whole IP payload. The pseudo-header
  // sum read from the IP header must agree with the one built from the addresses.
  const n = p === 17 ? udp.length : len;
  const pseudo = ipv4PseudoHeaderSum(b, off - ip.hdrLen, p, n);
  if (pseudo !== pseudoHeaderSum(ip.src, ip.dst, p, n)) {
    throw new Error(`protocol ${p}: the two pseudo-header sums disagree`);
  }
  const ok = p === 17 ? udpChecksumOk(b, off, n, pseudo) : tcpChecksumOk(b, off, n, pseudo);
  if (ok) return 0;
  return p === 17 ? Drop.UdpBadChecksum : Drop.TcpBadChecksum;
}

function check(name: string, b: Uint8Array, off: number, len: number): void {
  const code = decoders[name](guarded(b, off, off + len), off, len);
  if (!isDropCode(code)) throw new Error(`${name}: bad result ${code}`);
}

// Random bytes placed at a random offset inside a larger buffer, with a random len that
// may be shorter than the bytes (the decoder must not look past it).
const placed = fc
  .tuple(fc.uint8Array({ maxLength: 160 }), fc.nat(16), fc.nat(16), fc.nat(200))
  .map(([bytes, pre, post, cut]) => {
    const b = new Uint8Array(pre + bytes.length + post).fill(0xa5);
    b.set(bytes, pre);
    return { b, off: pre, len: Math.min(bytes.length, cut) };
  });

t.test("random bytes: every decoder returns a valid code, reads only its range", (t) => {
  for (const name of Object.keys(decoders)) {
    fc.assert(
      fc.property(placed, ({ b, off, len }) => check(name, b, off, len)),
      { numRuns: RUNS },
    );
    t.pass(name);
  }
  t.end();
});

// Valid packets from our encoders, then mutated: flipped bytes, set bytes, truncation.
const seeds: Uint8Array[] = [
  vxlanArpFrame(42, outer(4789, 40001, false)),
  vxlanL3Frame(1, 20, 1, outer(8472, 40002, true)),
  vxlanL3Frame(6, 30, 7, outer(4789, 40003, true)),
  vxlanL3Frame(17, 9, 7, outer(8472, 40004, true)),
  ipipFrame(1, 12, 64, P.Copy).subarray(14),
  ipipFrame(6, 12, 64, P.Set).subarray(14),
  ipipFrame(17, 13, 64, P.Clear).subarray(14),
  fragNeededFrame(1400),
];

const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
      minLength: 1,
      maxLength: 4,
    }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([seed, edits, cut]) => {
    const b = new Uint8Array(seed.length + 8);
    b.set(seed, 4);
    for (const [at, v, xor] of edits) {
      const i = 4 + (at % seed.length);
      b[i] = xor ? b[i] ^ (1 << (v & 7)) : v;
    }
    return { b, off: 4, len: cut === undefined ? seed.length : cut % (seed.length + 1) };
  });

t.test("mutated valid packets: every decoder still safe", (t) => {
  for (const name of Object.keys(decoders)) {
    fc.assert(
      fc.property(mutated, ({ b, off, len }) => {
        check(name, b, off, len);
        check(name, b, off + 14, Math.max(0, len - 14)); // also from the IP header on
      }),
      { numRuns: RUNS },
    );
    t.pass(name);
  }
  t.end();
});

t.test("unmutated seeds decode cleanly through their path", (t) => {
  for (const [i, s] of seeds.entries()) {
    const path = i >= 4 && i < 7 ? "ipipPath" : i === 7 ? "outerUdp" : "vxlanPath";
    const code = decoders[path](s, 0, s.length);
    t.equal(code, i === 7 ? Drop.Ipv4BadProtocol : 0, `seed ${i} via ${path}`);
  }
  t.end();
});

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.integer({ min: 0, max: 0xffffffffffff });
const payload = fc.uint8Array({ maxLength: 64 });

t.test("round trips", (t) => {
  fc.assert(
    fc.property(
      mac,
      mac,
      fc.integer({ min: 0x0600, max: 0xffff }).filter((x) => x !== 0x8100),
      fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
      fc.integer({ min: 0, max: 7 }),
      (dst, src, type, vlan, pcp) => {
        const b = new Uint8Array(20);
        if (vlan === undefined) ethernetWrite(b, 1, dst, src, type);
        else ethernetWriteVlan(b, 1, dst, src, vlan, pcp, type);
        if (ethernetParse(b, 1, 19, eth) !== 0) return false;
        return (
          eth.dst === dst &&
          eth.src === src &&
          eth.ethertype === type &&
          eth.vlan === (vlan ?? -1) &&
          eth.payloadOff === (vlan === undefined ? 15 : 19)
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("ethernet");

  fc.assert(
    fc.property(fc.constantFrom(1, 2), mac, u32, mac, u32, (op, sha, spa, tha, tpa) => {
      const b = new Uint8Array(30);
      arpWrite(b, 2, { op, sha, spa, tha, tpa });
      return (
        arpParse(b, 2, 28, arp) === 0 &&
        arp.op === op &&
        arp.sha === sha &&
        arp.spa === spa &&
        arp.tha === tha &&
        arp.tpa === tpa
      );
    }),
    { numRuns: RUNS },
  );
  t.pass("arp");

  fc.assert(
    fc.property(
      fc.tuple(fc.integer({ min: 0, max: 255 }), u16, u16, fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.integer({ min: 0, max: 255 }), u32, u32, fc.nat(100)),
      ([tos, id, flags, ttl], [proto, src, dst, plen]) => {
        const b = new Uint8Array(130);
        ipv4Write(b, 3, { tos, totalLen: 20 + plen, id, flags, ttl, protocol: proto, src, dst });
        if (ipv4Parse(b, 3, 20 + plen + 5, ip) !== 0) return false;
        const okFields =
          ip.tos === tos &&
          ip.id === id &&
          ip.df === ((flags & 0x4000) !== 0) &&
          ip.mf === ((flags & 0x2000) !== 0) &&
          ip.fragOff === (flags & 0x1fff) * 8 &&
          ip.ttl === ttl &&
          ip.protocol === proto &&
          ip.src === src &&
          ip.dst === dst &&
          ip.payloadLen === plen;
        // TTL decrement keeps the checksum valid, or refuses at <= 1.
        const dec = ipv4DecrementTtl(b, 3);
        return (
          okFields &&
          ipv4ChecksumOk(b, 3, 20) &&
          (ttl <= 1 ? dec === Drop.TtlExpired : dec === 0 && b[3 + 8] === ttl - 1)
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("ipv4 (+ TTL decrement)");

  fc.assert(
    fc.property(u16, u16, u32, u32, payload, fc.boolean(), (sp, dp, src, dst, data, csum) => {
      const b = new Uint8Array(80);
      b.set(data, 10);
      udpWrite(b, 2, sp, dp, 8 + data.length);
      const pseudo = pseudoHeaderSum(src, dst, 17, 8 + data.length);
      if (csum) udpFillChecksum(b, 2, 8 + data.length, pseudo);
      return (
        udpParse(b, 2, 8 + data.length, udp) === 0 &&
        udp.srcPort === sp &&
        udp.dstPort === dp &&
        udp.payloadLen === data.length &&
        (udp.checksum !== 0) === csum &&
        udpChecksumOk(b, 2, udp.length, pseudo)
      );
    }),
    { numRuns: RUNS },
  );
  t.pass("udp");

  fc.assert(
    fc.property(
      u16,
      u16,
      u32,
      u32,
      payload,
      fc.integer({ min: 0, max: 255 }),
      (sp, dp, src, dst, data, flags) => {
        const b = new Uint8Array(90);
        b.set(data, 21);
        const want = { srcPort: sp, dstPort: dp, seq: src, ack: dst, flags, window: 1000 };
        tcpWrite(b, 1, { ...newTcpInfo(), ...want });
        const pseudo = pseudoHeaderSum(src, dst, 6, 20 + data.length);
        tcpFillChecksum(b, 1, 20 + data.length, pseudo);
        return (
          tcpParse(b, 1, 20 + data.length, tcp) === 0 &&
          tcp.srcPort === sp &&
          tcp.dstPort === dp &&
          tcp.seq === src &&
          tcp.ack === dst &&
          tcp.flags === flags &&
          tcp.window === 1000 &&
          tcp.payloadLen === data.length &&
          tcpChecksumOk(b, 1, 20 + data.length, pseudo)
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("tcp");

  fc.assert(
    fc.property(fc.constantFrom(0, 8), u16, u16, payload, (type, id, seq, data) => {
      const b = new Uint8Array(80);
      b.set(data, 8);
      icmpWriteEcho(b, 0, { ...newIcmpInfo(), type, id, seq, dataLen: data.length });
      return (
        icmpParse(b, 0, 8 + data.length, icmp) === 0 &&
        icmp.type === type &&
        icmp.id === id &&
        icmp.seq === seq &&
        icmp.dataLen === data.length
      );
    }),
    { numRuns: RUNS },
  );
  t.pass("icmp echo");

  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffff }),
      mac,
      mac,
      fc.uint8Array({ minLength: 20, maxLength: 80 }),
      (vni, s, d, inner) => {
        const b = new Uint8Array(64 + inner.length);
        b.set(inner, 64);
        b[64] = (b[64] & 0x0f) | 0x40;
        const off = vxlanEncapL3(b, 64, inner.length, vni, s, d);
        if (vxlanDecap(b, off, inner.length + 22, vx) !== 0 || vx.vni !== vni) return false;
        if (ethernetParse(b, vx.innerOff, vx.innerLen, eth) !== 0) return false;
        if (eth.src !== s || eth.dst !== d || eth.ethertype !== 0x0800) return false;
        if (eth.payloadOff !== 64 || eth.payloadLen !== inner.length) return false;
        const off2 = vxlanEncapL2(b, off + 8, vni ^ 1);
        return (
          off2 === off && vxlanDecap(b, off2, inner.length + 22, vx) === 0 && vx.vni === (vni ^ 1)
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("vxlan L3 / L2");

  fc.assert(
    fc.property(
      fc.tuple(u32, u32, fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 255 })),
      fc.tuple(fc.constantFrom(DfPolicy.Copy, DfPolicy.Set, DfPolicy.Clear), u16, fc.boolean()),
      payload,
      ([src, dst, ttl, tos], [df, id, innerDf], data) => {
        const b = new Uint8Array(20 + 20 + data.length);
        b.set(data, 40);
        ipv4Write(b, 20, {
          tos: 0,
          totalLen: 20 + data.length,
          id: 1,
          flags: innerDf ? 0x4000 : 0,
          ttl: 9,
          protocol: 17,
          src: 1,
          dst: 2,
        });
        const off = ipipEncap(b, 20, 20 + data.length, { src, dst, ttl, tos, df, id });
        if (off !== 0 || ipipDecap(b, 0, b.length, ipip) !== 0) return false;
        const o = ipip.outer;
        const wantDf = df === DfPolicy.Set || (df === DfPolicy.Copy && innerDf);
        return (
          o.src === src &&
          o.dst === dst &&
          o.ttl === ttl &&
          o.id === id &&
          (o.tos & 0xfc) === (tos & 0xfc) &&
          o.df === wantDf &&
          ipip.innerOff === 20 &&
          ipip.innerLen === 20 + data.length
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("ipip");

  fc.assert(
    fc.property(
      fc.tuple(mac, mac, u32, u32, u16, u16),
      fc.tuple(fc.integer({ min: 1, max: 255 }), fc.boolean(), fc.boolean()),
      payload,
      ([sm, dm, si, di, sp, dp], [ttl, df, csum], data) => {
        const p = newOuterParams();
        Object.assign(p, {
          srcMac: sm,
          dstMac: dm,
          srcIp: si,
          dstIp: di,
          srcPort: sp,
          dstPort: dp,
        });
        Object.assign(p, { ttl, df, udpChecksum: csum });
        const b = new Uint8Array(42 + data.length);
        b.set(data, 42);
        if (outerEncapUdp(b, 42, data.length, p) !== 0) return false;
        return (
          outerDecapUdp(b, 0, b.length, out) === 0 &&
          out.eth.src === sm &&
          out.eth.dst === dm &&
          out.ip.src === si &&
          out.ip.dst === di &&
          out.ip.ttl === ttl &&
          out.ip.df === df &&
          out.udp.srcPort === sp &&
          out.udp.dstPort === dp &&
          out.payloadOff === 42 &&
          out.payloadLen === data.length
        );
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("outer Ethernet/IPv4/UDP");

  fc.assert(
    fc.property(
      fc.integer({ min: 0x01000000, max: 0xdfffffff }).filter((a) => a >>> 24 !== 127),
      u32.filter((a) => a >>> 28 !== 0xe && a !== 0xffffffff),
      fc.integer({ min: 68, max: 0xffff }),
      fc.uint8Array({ minLength: 0, maxLength: 40 }),
      (src, dst, mtu, data) => {
        const o = new Uint8Array(20 + data.length);
        o.set(data, 20);
        ipv4Write(o, 0, {
          tos: 0,
          totalLen: o.length,
          id: 1,
          flags: 0x4000,
          ttl: 64,
          protocol: 17,
          src,
          dst,
        });
        const d = new Uint8Array(100);
        const n = icmpWriteError(d, 0, o, 0, o.length, {
          type: 3,
          code: 4,
          mtu,
          from: 0x0a000001,
          ttl: 64,
          id: 0,
        });
        if (n !== 28 + Math.min(28, o.length)) return false;
        if (ipv4Parse(d, 0, n, ip) !== 0 || ip.dst !== src) return false;
        return icmpParse(d, 20, n - 20, icmp) === 0 && icmp.mtu === mtu && icmp.type === 3;
      },
    ),
    { numRuns: RUNS },
  );
  t.pass("icmp frag-needed builder");

  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.nat(9), u16, (h, w, nv) => {
      h[10] = 0;
      h[11] = 0;
      const c = internetChecksum(h, 0, 20);
      const at = w === 5 ? 0 : w * 2; // never the checksum word itself
      const old = (h[at] << 8) | h[at + 1];
      h[at] = nv >>> 8;
      h[at + 1] = nv & 0xff;
      const full = internetChecksum(h, 0, 20);
      const inc = checksumUpdate16(c, old, nv);
      // +0/-0: one's complement has two zeros; both verify identically.
      return inc === full || (inc ^ full) === 0xffff;
    }),
    { numRuns: RUNS },
  );
  t.pass("RFC 1624 update equals recompute");
  t.end();
});
