// IPv4 header (RFC 791). Options are carried but not interpreted: IHL skips them.

import { read16, write16 } from "./bytes.js";
import { checksumOk, checksumUpdate16, internetChecksum } from "./checksum.js";
import { Drop } from "./drop.js";

export const IPV4_VER_IHL = 0;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FLAGS_FRAG = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTOCOL = 9;
export const IPV4_CHECKSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV4_HDR_LEN = 20;
export const IPV4_MAX_LEN = 65535;

export const IPV4_DF = 0x4000;
export const IPV4_MF = 0x2000;
export const IPV4_FRAG_MASK = 0x1fff;

export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** ECN is the low two bits of TOS (RFC 3168). */
export const ECN_MASK = 0x03;
export const ECN_ECT0 = 0x02;
export const ECN_CE = 0x03;

export interface Ipv4Info {
  hdrLen: number;
  totalLen: number;
  tos: number;
  id: number;
  df: boolean;
  mf: boolean;
  /** Fragment offset in bytes. */
  fragOff: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  payloadOff: number;
  payloadLen: number;
}

export function newIpv4Info(): Ipv4Info {
  return {
    hdrLen: 0,
    totalLen: 0,
    tos: 0,
    id: 0,
    df: false,
    mf: false,
    fragOff: 0,
    ttl: 0,
    protocol: 0,
    src: 0,
    dst: 0,
    payloadOff: 0,
    payloadLen: 0,
  };
}

/**
 * Validate and decode the header at buf[off..off+len). Bytes past the total length
 * (Ethernet padding) are allowed and ignored. Fragments are reported, not dropped:
 * whether one can be handled is the caller's decision.
 */
export function ipv4Parse(buf: Uint8Array, off: number, len: number, out: Ipv4Info): Drop {
  if (len < IPV4_HDR_LEN) return Drop.Ipv4Truncated;
  const vihl = buf[off + IPV4_VER_IHL];
  if (vihl >>> 4 !== 4) return Drop.Ipv4BadVersion;
  const hdrLen = (vihl & 0x0f) * 4;
  if (hdrLen < IPV4_HDR_LEN) return Drop.Ipv4BadIhl;
  if (hdrLen > len) return Drop.Ipv4Truncated;
  const totalLen = read16(buf, off + IPV4_TOTAL_LEN);
  if (totalLen < hdrLen) return Drop.Ipv4BadTotalLength;
  if (totalLen > len) return Drop.Ipv4Truncated;
  if (!checksumOk(buf, off, hdrLen)) {
    return Drop.Ipv4BadChecksum;
  }
  const ff = read16(buf, off + IPV4_FLAGS_FRAG);
  out.hdrLen = hdrLen;
  out.totalLen = totalLen;
  out.tos = buf[off + IPV4_TOS];
  out.id = read16(buf, off + IPV4_ID);
  out.df = (ff & IPV4_DF) !== 0;
  out.mf = (ff & IPV4_MF) !== 0;
  out.fragOff = (ff & IPV4_FRAG_MASK) * 8;
  out.ttl = buf[off + IPV4_TTL];
  out.protocol = buf[off + IPV4_PROTOCOL];
  // Inlined: an address >= 64.0.0.0 is outside Smi range, and a double returned from a
  // call the optimizer did not inline is boxed (one allocation per packet).
  const a = off + IPV4_SRC;
  out.src = ((buf[a] << 24) | (buf[a + 1] << 16) | (buf[a + 2] << 8) | buf[a + 3]) >>> 0;
  out.dst = ((buf[a + 4] << 24) | (buf[a + 5] << 16) | (buf[a + 6] << 8) | buf[a + 7]) >>> 0;
  out.payloadOff = off + hdrLen;
  out.payloadLen = totalLen - hdrLen;
  return Drop.None;
}

/**
 * The fields ipv4Write sets. The writer's caller owns one and fills it per packet (no
 * object per packet); addresses as uint32 or int32, either works.
 */
export interface Ipv4Fields {
  tos: number;
  totalLen: number;
  id: number;
  /** IPV4_DF / IPV4_MF or'ed with the fragment offset in 8-byte units. */
  flags: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
}

export function newIpv4Fields(): Ipv4Fields {
  return { tos: 0, totalLen: 0, id: 0, flags: 0, ttl: 64, protocol: 0, src: 0, dst: 0 };
}

/** Write a 20-byte header (no options) with its checksum; returns the payload offset. */
export function ipv4Write(buf: Uint8Array, off: number, h: Ipv4Fields): number {
  buf[off + IPV4_VER_IHL] = 0x45;
  buf[off + IPV4_TOS] = h.tos & 0xff;
  write16(buf, off + IPV4_TOTAL_LEN, h.totalLen);
  write16(buf, off + IPV4_ID, h.id);
  write16(buf, off + IPV4_FLAGS_FRAG, h.flags);
  buf[off + IPV4_TTL] = h.ttl & 0xff;
  buf[off + IPV4_PROTOCOL] = h.protocol & 0xff;
  buf[off + IPV4_CHECKSUM] = 0;
  buf[off + IPV4_CHECKSUM + 1] = 0;
  // In 16-bit halves: an address passed whole to a call that is not inlined is boxed.
  const src = h.src;
  const dst = h.dst;
  write16(buf, off + IPV4_SRC, (src >>> 16) & 0xffff);
  write16(buf, off + IPV4_SRC + 2, src & 0xffff);
  write16(buf, off + IPV4_DST, (dst >>> 16) & 0xffff);
  write16(buf, off + IPV4_DST + 2, dst & 0xffff);
  write16(buf, off + IPV4_CHECKSUM, internetChecksum(buf, off, IPV4_HDR_LEN));
  return off + IPV4_HDR_LEN;
}

/**
 * Pseudo-header sum for UDP/TCP read straight from the header at `ipOff`: 16-bit words
 * only, so unlike pseudoHeaderSum(src, dst, ...) no 32-bit address (a double above
 * 2^30) has to be passed into a call, which would box it on a hot path.
 */
export function ipv4PseudoHeaderSum(
  buf: Uint8Array,
  ipOff: number,
  protocol: number,
  length: number,
): number {
  const a = ipOff + IPV4_SRC;
  return (
    read16(buf, a) +
    read16(buf, a + 2) +
    read16(buf, a + 4) +
    read16(buf, a + 6) +
    protocol +
    length
  );
}

/** Recompute the header checksum after fields were changed directly. */
export function ipv4FillChecksum(buf: Uint8Array, off: number): void {
  const hdrLen = (buf[off] & 0x0f) * 4;
  buf[off + IPV4_CHECKSUM] = 0;
  buf[off + IPV4_CHECKSUM + 1] = 0;
  write16(buf, off + IPV4_CHECKSUM, internetChecksum(buf, off, hdrLen));
}

export function ipv4ChecksumOk(buf: Uint8Array, off: number, hdrLen: number): boolean {
  return checksumOk(buf, off, hdrLen);
}

/**
 * Forwarding step: TTL - 1 with an RFC 1624 checksum update (no re-sum). A packet
 * arriving with TTL 0 or 1 must not be forwarded: it is left untouched and the caller
 * answers with ICMP time exceeded.
 */
export function ipv4DecrementTtl(buf: Uint8Array, off: number): Drop {
  const ttl = buf[off + IPV4_TTL];
  if (ttl <= 1) return Drop.TtlExpired;
  // TTL shares a 16-bit word with the protocol.
  const proto = buf[off + IPV4_PROTOCOL];
  const csum = read16(buf, off + IPV4_CHECKSUM);
  buf[off + IPV4_TTL] = ttl - 1;
  write16(
    buf,
    off + IPV4_CHECKSUM,
    checksumUpdate16(csum, (ttl << 8) | proto, ((ttl - 1) << 8) | proto),
  );
  return Drop.None;
}

/** Rewrite TOS with an incremental checksum update (ECN marking on decap). */
export function ipv4SetTos(buf: Uint8Array, off: number, tos: number): void {
  const old = read16(buf, off);
  const csum = read16(buf, off + IPV4_CHECKSUM);
  buf[off + IPV4_TOS] = tos & 0xff;
  write16(buf, off + IPV4_CHECKSUM, checksumUpdate16(csum, old, read16(buf, off)));
}

/** True when the packet is any fragment (MF set or non-zero offset). */
export function ipv4IsFragment(buf: Uint8Array, off: number): boolean {
  return (read16(buf, off + IPV4_FLAGS_FRAG) & (IPV4_MF | IPV4_FRAG_MASK)) !== 0;
}
