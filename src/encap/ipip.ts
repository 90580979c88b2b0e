// IP in IP (RFC 2003): a plain outer IPv4 header, protocol 4, in front of the inner
// IPv4 packet; and IPv6 in IPv4 (RFC 4213 6in4, the kernel's `sit`), protocol 41.

import { read16 } from "./bytes.js";
import { Drop } from "./drop.js";
import {
  ECN_CE,
  ECN_ECT0,
  ECN_MASK,
  IPPROTO_IPIP,
  IPV4_DF,
  IPV4_FLAGS_FRAG,
  IPV4_HDR_LEN,
  IPV4_MAX_LEN,
  IPV4_TOS,
  IPV4_TTL,
  type Ipv4Fields,
  type Ipv4Info,
  ipv4Parse,
  ipv4Write,
  newIpv4Fields,
  newIpv4Info,
} from "./ipv4.js";
import {
  IPV6_HDR_LEN,
  IPV6_HOP_LIMIT,
  type Ipv6Info,
  ipv6Parse,
  ipv6TrafficClass,
} from "./ipv6.js";

/** IPv6 encapsulated in IPv4 (RFC 4213). */
export const IPPROTO_IPV6 = 41;

export const IPIP_OVERHEAD = IPV4_HDR_LEN;
/** TTL or TOS argument meaning "copy from the inner header". */
export const IPIP_INHERIT = -1;

/** What the outer DF bit becomes. */
export enum DfPolicy {
  /** Copy the inner DF: PMTU discovery of the inner sender keeps working. */
  Copy = 0,
  Set = 1,
  Clear = 2,
}

/** What ipipEncap writes into the outer header; the caller owns one and fills it. */
export interface IpipParams {
  src: number;
  dst: number;
  /** A value, or IPIP_INHERIT. */
  ttl: number;
  /** A value, or IPIP_INHERIT. */
  tos: number;
  df: DfPolicy;
  id: number;
}

export function newIpipParams(): IpipParams {
  return { src: 0, dst: 0, ttl: 64, tos: 0, df: DfPolicy.Copy, id: 0 };
}

/** The outer header ipipEncap fills (one per thread: the writer does not re-enter). */
const outerHdr: Ipv4Fields = { ...newIpv4Fields(), protocol: IPPROTO_IPIP };

/**
 * Prepend the outer header in front of the IPv4 packet at buf[innerOff..+innerLen).
 * Whatever the TOS, its ECN bits follow RFC 6040 normal mode: copied from the inner,
 * except that inner CE becomes ECT(0) so a mark set before the tunnel isn't mistaken
 * for one set inside it. Returns the new start (innerOff - 20) or a negative Drop code.
 */
export function ipipEncap(
  buf: Uint8Array,
  innerOff: number,
  innerLen: number,
  p: IpipParams,
): number {
  if (innerLen < IPV4_HDR_LEN || innerOff + innerLen > buf.length) return -Drop.Ipv4Truncated;
  if (buf[innerOff] >>> 4 !== 4) return -Drop.Ipv4BadVersion;
  if (innerLen > IPV4_MAX_LEN - IPV4_HDR_LEN) return -Drop.TooBig;
  const off = innerOff - IPV4_HDR_LEN;
  if (off < 0) return -Drop.NoHeadroom;
  const innerTos = buf[innerOff + IPV4_TOS];
  const innerEcn = innerTos & ECN_MASK;
  const dscp = (p.tos === IPIP_INHERIT ? innerTos : p.tos) & ~ECN_MASK;
  const innerDf = (read16(buf, innerOff + IPV4_FLAGS_FRAG) & IPV4_DF) !== 0;
  const h = outerHdr;
  h.tos = dscp | (innerEcn === ECN_CE ? ECN_ECT0 : innerEcn);
  h.ttl = p.ttl === IPIP_INHERIT ? buf[innerOff + IPV4_TTL] : p.ttl;
  h.flags = p.df === DfPolicy.Set || (p.df === DfPolicy.Copy && innerDf) ? IPV4_DF : 0;
  return writeOuter(buf, off, innerLen, p, h);
}

/** The rest of the outer header (length, id, addresses) and the write; returns `off`. */
function writeOuter(
  buf: Uint8Array,
  off: number,
  innerLen: number,
  p: IpipParams,
  h: Ipv4Fields,
): number {
  h.totalLen = innerLen + IPV4_HDR_LEN;
  h.id = p.id;
  h.src = p.src;
  h.dst = p.dst;
  ipv4Write(buf, off, h);
  return off;
}

/** The outer header sitEncap fills (protocol 41). */
const outerHdr6: Ipv4Fields = { ...newIpv4Fields(), protocol: IPPROTO_IPV6 };

/**
 * 6in4 (RFC 4213 §3.5): the outer header in front of the IPv6 packet at
 * buf[innerOff..+innerLen), as ipipEncap does for IPv4: TOS from the traffic class
 * (ECN per RFC 6040), TTL from the hop limit when inherited. IPv6 has no DF to copy:
 * DF only where the policy sets it (RFC 4213 §3.2.1: a sender too big for the tunnel
 * gets a Packet Too Big before this, so the outer packet may be fragmented on the way).
 */
export function sitEncap(
  buf: Uint8Array,
  innerOff: number,
  innerLen: number,
  p: IpipParams,
): number {
  if (innerLen < IPV6_HDR_LEN || innerOff + innerLen > buf.length) return -Drop.Ipv6Truncated;
  if (innerLen > IPV4_MAX_LEN - IPV4_HDR_LEN) return -Drop.TooBig;
  const off = innerOff - IPV4_HDR_LEN;
  if (off < 0) return -Drop.NoHeadroom;
  const tc = ipv6TrafficClass(buf, innerOff);
  const ecn = tc & ECN_MASK;
  const h = outerHdr6;
  h.tos = ((p.tos === IPIP_INHERIT ? tc : p.tos) & ~ECN_MASK) | (ecn === ECN_CE ? ECN_ECT0 : ecn);
  h.ttl = p.ttl === IPIP_INHERIT ? buf[innerOff + IPV6_HOP_LIMIT] : p.ttl;
  h.flags = p.df === DfPolicy.Set ? IPV4_DF : 0;
  return writeOuter(buf, off, innerLen, p, h);
}

export interface IpipInfo {
  outer: Ipv4Info;
  inner: Ipv4Info;
  innerOff: number;
  /** The inner packet's total length (outer padding excluded). */
  innerLen: number;
  /** When decap returns IpipBadInner: what was wrong with the inner header. */
  innerDrop: Drop;
}

export function newIpipInfo(): IpipInfo {
  return {
    outer: newIpv4Info(),
    inner: newIpv4Info(),
    innerOff: 0,
    innerLen: 0,
    innerDrop: Drop.None,
  };
}

/**
 * Validate the outer header at buf[off..off+len) (what a raw IPPROTO_IPIP socket
 * delivers) and the inner header behind it; no copy. Outer fragments are dropped:
 * we do not reassemble.
 */
export function ipipDecap(buf: Uint8Array, off: number, len: number, out: IpipInfo): Drop {
  const outer = out.outer;
  const code = ipv4Parse(buf, off, len, outer);
  if (code !== Drop.None) return code;
  if (outer.protocol !== IPPROTO_IPIP) return Drop.Ipv4BadProtocol;
  if (outer.mf || outer.fragOff !== 0) return Drop.Ipv4Fragment;
  const innerCode = ipv4Parse(buf, outer.payloadOff, outer.payloadLen, out.inner);
  out.innerDrop = innerCode;
  if (innerCode !== Drop.None) return Drop.IpipBadInner;
  out.innerOff = outer.payloadOff;
  out.innerLen = out.inner.totalLen;
  return Drop.None;
}

/**
 * A 6in4 packet: what ipipDecap left in `out` when it returned Ipv4BadProtocol (the
 * outer header is parsed). Checks protocol 41 and the inner IPv6 header into `inner`.
 */
export function sitDecap(buf: Uint8Array, out: IpipInfo, inner: Ipv6Info): Drop {
  const outer = out.outer;
  if (outer.protocol !== IPPROTO_IPV6) return Drop.Ipv4BadProtocol;
  if (outer.mf || outer.fragOff !== 0) return Drop.Ipv4Fragment;
  const innerCode = ipv6Parse(buf, outer.payloadOff, outer.payloadLen, inner);
  out.innerDrop = innerCode;
  if (innerCode !== Drop.None) return Drop.IpipBadInner;
  out.innerOff = outer.payloadOff;
  out.innerLen = inner.totalLen;
  return Drop.None;
}
