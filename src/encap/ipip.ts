// IP in IP (RFC 2003): a plain outer IPv4 header, protocol 4, in front of the inner
// IPv4 packet.

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
  h.totalLen = innerLen + IPV4_HDR_LEN;
  h.id = p.id;
  h.src = p.src;
  h.dst = p.dst;
  ipv4Write(buf, off, h);
  return off;
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
