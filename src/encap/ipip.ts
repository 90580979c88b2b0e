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
  type Ipv4Info,
  ipv4Parse,
  ipv4Write,
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

/**
 * Prepend the outer header in front of the IPv4 packet at buf[innerOff..+innerLen).
 * `ttl`/`tos` may be IPIP_INHERIT. Whatever the TOS, its ECN bits follow RFC 6040
 * normal mode: copied from the inner, except that inner CE becomes ECT(0) so a mark
 * set before the tunnel isn't mistaken for one set inside it. Returns the new start
 * (innerOff - 20) or a negative Drop code.
 */
export function ipipEncap(
  buf: Uint8Array,
  innerOff: number,
  innerLen: number,
  src: number,
  dst: number,
  ttl: number,
  tos: number,
  df: DfPolicy,
  id: number,
): number {
  if (innerLen < IPV4_HDR_LEN || innerOff + innerLen > buf.length) return -Drop.Ipv4Truncated;
  if (buf[innerOff] >>> 4 !== 4) return -Drop.Ipv4BadVersion;
  if (innerLen > IPV4_MAX_LEN - IPV4_HDR_LEN) return -Drop.TooBig;
  const off = innerOff - IPV4_HDR_LEN;
  if (off < 0) return -Drop.NoHeadroom;
  const innerTos = buf[innerOff + IPV4_TOS];
  const innerEcn = innerTos & ECN_MASK;
  const dscp = (tos === IPIP_INHERIT ? innerTos : tos) & ~ECN_MASK;
  const outerTos = dscp | (innerEcn === ECN_CE ? ECN_ECT0 : innerEcn);
  const outerTtl = ttl === IPIP_INHERIT ? buf[innerOff + IPV4_TTL] : ttl;
  const innerDf = (read16(buf, innerOff + IPV4_FLAGS_FRAG) & IPV4_DF) !== 0;
  const setDf = df === DfPolicy.Set || (df === DfPolicy.Copy && innerDf);
  ipv4Write(
    buf,
    off,
    outerTos,
    innerLen + IPV4_HDR_LEN,
    id,
    setDf ? IPV4_DF : 0,
    outerTtl,
    IPPROTO_IPIP,
    src,
    dst,
  );
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
