// ICMPv6 (RFC 4443) as far as a tunnel endpoint needs it: parse with the pseudo-header
// checksum, build the errors a router on the path sends (Packet Too Big with the
// tunnel MTU above all: IPv6 routers never fragment, RFC 8200 §5), and the two
// Neighbor Discovery messages (RFC 4861) vxtun answers on behalf of its neighbour
// table, as proxy ARP does for IPv4.

import { readMac, writeMac } from "./addr.js";
import { read32, write16, write32 } from "./bytes.js";
import { checksumOk, internetChecksum } from "./checksum.js";
import { Drop } from "./drop.js";
import {
  IPV6_DST,
  IPV6_HDR_LEN,
  IPV6_HOP_LIMIT,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LEN,
  IPV6_SRC,
  ipv6PseudoHeaderSum,
  ipv6UpperOffset,
} from "./ipv6.js";

export const IPPROTO_ICMPV6 = 58;
export const ICMP6_HDR_LEN = 8;
/** Every IPv6 link carries this much (RFC 8200 §5); errors are cut to fit it. */
export const IPV6_MIN_MTU = 1280;

export const ICMP6_DEST_UNREACH = 1;
export const ICMP6_PACKET_TOO_BIG = 2;
export const ICMP6_TIME_EXCEEDED = 3;
export const ICMP6_PARAM_PROBLEM = 4;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;
export const NDP_NEIGHBOR_SOLICIT = 135;
export const NDP_NEIGHBOR_ADVERT = 136;

/** Neighbor Discovery messages come from the link itself: hop limit 255 (RFC 4861 §7.1). */
const NDP_HOP_LIMIT = 255;
/** NS/NA: type, code, checksum, 4 bytes flags/reserved, 16 bytes target. */
const NDP_TARGET = 8;
const NDP_BODY_LEN = 24;
const NDP_OPT_SOURCE_LLADDR = 1;
const NDP_OPT_TARGET_LLADDR = 2;
/** An Ethernet link-layer address option: type, length (1 = 8 bytes), MAC. */
const NDP_LLADDR_OPT_LEN = 8;
const NA_FLAG_SOLICITED = 0x40000000;
const NA_FLAG_OVERRIDE = 0x20000000;
/** What ndpWriteAdvert writes: IPv6 header, NA body, target link-layer address option. */
export const NDP_ADVERT_LEN = IPV6_HDR_LEN + NDP_BODY_LEN + NDP_LLADDR_OPT_LEN;

/** What icmp6Parse reads; the caller owns one. */
export interface Icmp6Info {
  type: number;
  code: number;
  /** Packet Too Big: the MTU field (0 otherwise). */
  mtu: number;
  /** The message: offset of its ICMPv6 header and its length. */
  off: number;
  len: number;
}

export function newIcmp6Info(): Icmp6Info {
  return { type: 0, code: 0, mtu: 0, off: 0, len: 0 };
}

/**
 * The ICMPv6 message of the IPv6 packet at buf[ipOff..ipOff+totalLen) (header already
 * checked by ipv6Parse). Options headers in front of it are stepped over; the
 * checksum covers the pseudo-header (RFC 4443 §2.3).
 */
export function icmp6Parse(buf: Uint8Array, ipOff: number, totalLen: number, out: Icmp6Info): Drop {
  const at = ipv6UpperOffset(buf, ipOff, totalLen, IPPROTO_ICMPV6);
  if (at === 0) return Drop.Icmp6Truncated;
  const off = ipOff + at;
  const len = totalLen - at;
  if (len < ICMP6_HDR_LEN) return Drop.Icmp6Truncated;
  if (!checksumOk(buf, off, len, ipv6PseudoHeaderSum(buf, ipOff, IPPROTO_ICMPV6, len))) {
    return Drop.Icmp6BadChecksum;
  }
  const type = buf[off];
  out.type = type;
  out.code = buf[off + 1];
  out.mtu = type === ICMP6_PACKET_TOO_BIG ? read32(buf, off + 4) : 0;
  out.off = off;
  out.len = len;
  return Drop.None;
}

/** What ndpParseSolicit found in a neighbour solicitation. */
export interface NdpSolicit {
  /** Offset of the 16-byte target address in the buffer. */
  targetOff: number;
  /** The solicitor's MAC from its source link-layer address option, or -1. */
  sourceMac: number;
  /** Source :: (duplicate address detection): answer to all-nodes, unsolicited. */
  fromUnspecified: boolean;
}

export function newNdpSolicit(): NdpSolicit {
  return { targetOff: 0, sourceMac: -1, fromUnspecified: false };
}

/**
 * Validate a neighbour solicitation (RFC 4861 §7.1.1) that icmp6Parse returned in `m`
 * from the IPv6 packet at ipOff: hop limit 255, code 0, at least 24 bytes, a unicast
 * target, options of non-zero length inside the message, and from :: only to a
 * solicited-node address and without a source link-layer address.
 */
export function ndpParseSolicit(
  buf: Uint8Array,
  ipOff: number,
  m: Icmp6Info,
  out: NdpSolicit,
): Drop {
  if (m.type !== NDP_NEIGHBOR_SOLICIT || m.code !== 0 || m.len < NDP_BODY_LEN) {
    return Drop.NdpInvalid;
  }
  if (buf[ipOff + IPV6_HOP_LIMIT] !== NDP_HOP_LIMIT) return Drop.NdpInvalid;
  const targetOff = m.off + NDP_TARGET;
  if (buf[targetOff] === 0xff) return Drop.NdpInvalid;
  let mac = -1;
  const end = m.off + m.len;
  for (let o = m.off + NDP_BODY_LEN; o < end; ) {
    if (o + 2 > end) return Drop.NdpInvalid;
    const optLen = buf[o + 1] * 8;
    if (optLen === 0 || o + optLen > end) return Drop.NdpInvalid;
    if (buf[o] === NDP_OPT_SOURCE_LLADDR && optLen >= NDP_LLADDR_OPT_LEN) mac = readMac(buf, o + 2);
    o += optLen;
  }
  const unspecified = isUnspecified(buf, ipOff + IPV6_SRC);
  if (unspecified && (mac >= 0 || !isSolicitedNode(buf, ipOff + IPV6_DST))) {
    return Drop.NdpInvalid;
  }
  out.targetOff = targetOff;
  out.sourceMac = mac;
  out.fromUnspecified = unspecified;
  return Drop.None;
}

/**
 * Write a complete IPv6 neighbour advertisement at buf[off..off+NDP_ADVERT_LEN):
 * `target` (16 bytes at targetBuf[targetOff]) is at `mac`. Sent from the target to
 * the solicitor (`to` at toBuf[toOff]), solicited; or, answering duplicate address
 * detection, to all-nodes and unsolicited (`toAllNodes`). Override is set: the
 * table is the authority for every address behind the device, so an answer must
 * replace whatever the asker had cached (RFC 4861 §7.2.8 clears it only for a proxy
 * that shares a link with the real owner). Returns the bytes written.
 */
export function ndpWriteAdvert(
  buf: Uint8Array,
  off: number,
  targetBuf: Uint8Array,
  targetOff: number,
  mac: number,
  toBuf: Uint8Array,
  toOff: number,
  toAllNodes: boolean,
): number {
  const icmp = off + IPV6_HDR_LEN;
  const len = NDP_BODY_LEN + NDP_LLADDR_OPT_LEN;
  // The body first: target and `to` may lie in the packet this answer overwrites.
  if (toAllNodes) {
    buf.fill(0, off + IPV6_DST, off + IPV6_DST + 16);
    buf[off + IPV6_DST] = 0xff;
    buf[off + IPV6_DST + 1] = 0x02;
    buf[off + IPV6_DST + 15] = 0x01;
  } else if (toBuf === buf) {
    buf.copyWithin(off + IPV6_DST, toOff, toOff + 16);
  } else {
    buf.set(toBuf.subarray(toOff, toOff + 16), off + IPV6_DST);
  }
  if (targetBuf === buf) buf.copyWithin(icmp + NDP_TARGET, targetOff, targetOff + 16);
  else buf.set(targetBuf.subarray(targetOff, targetOff + 16), icmp + NDP_TARGET);
  buf.copyWithin(off + IPV6_SRC, icmp + NDP_TARGET, icmp + NDP_TARGET + 16);
  buf[icmp] = NDP_NEIGHBOR_ADVERT;
  buf[icmp + 1] = 0;
  write16(buf, icmp + 2, 0);
  write32(buf, icmp + 4, (toAllNodes ? 0 : NA_FLAG_SOLICITED) | NA_FLAG_OVERRIDE);
  buf[icmp + NDP_BODY_LEN] = NDP_OPT_TARGET_LLADDR;
  buf[icmp + NDP_BODY_LEN + 1] = 1;
  writeMac(buf, icmp + NDP_BODY_LEN + 2, mac);
  writeIpv6Fixed(buf, off, len, NDP_HOP_LIMIT);
  write16(
    buf,
    icmp + 2,
    internetChecksum(buf, icmp, len, ipv6PseudoHeaderSum(buf, off, IPPROTO_ICMPV6, len)),
  );
  return IPV6_HDR_LEN + len;
}

/** What icmp6WriteError writes; the caller owns one and fills it. */
export interface Icmp6ErrorParams {
  type: number;
  code: number;
  /** Packet Too Big: the MTU to announce; Parameter Problem: the pointer. */
  value: number;
  /** Our address on the path (16 bytes): the error's source. */
  readonly from: Uint8Array;
  hopLimit: number;
}

export function newIcmp6ErrorParams(): Icmp6ErrorParams {
  return {
    type: ICMP6_PACKET_TOO_BIG,
    code: 0,
    value: 0,
    from: new Uint8Array(16),
    hopLimit: 64,
  };
}

/**
 * Write a complete IPv6 + ICMPv6 error answering the packet at src[srcOff..+srcLen)
 * (its fixed header checked by ipv6Parse), quoting as much of it as keeps the error
 * within IPV6_MIN_MTU (RFC 4443 §2.4 (c)). Returns the bytes written at dst[dstOff..),
 * or 0 where §2.4 (e) forbids an answer: the offender is an ICMPv6 error, comes from
 * :: or a multicast address, or went to a multicast address (allowed for Packet Too
 * Big only). `dst` needs IPV6_MIN_MTU bytes; it may be `src`, overlapping or not.
 */
export function icmp6WriteError(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  e: Icmp6ErrorParams,
): number {
  if (srcLen < IPV6_HDR_LEN) return 0;
  if (isUnspecified(src, srcOff + IPV6_SRC) || src[srcOff + IPV6_SRC] === 0xff) return 0;
  if (src[srcOff + IPV6_DST] === 0xff && e.type !== ICMP6_PACKET_TOO_BIG) return 0;
  const at = ipv6UpperOffset(src, srcOff, srcLen, IPPROTO_ICMPV6);
  if (at !== 0 && at < srcLen && src[srcOff + at] < ICMP6_ECHO_REQUEST) return 0;
  const room = IPV6_MIN_MTU - IPV6_HDR_LEN - ICMP6_HDR_LEN;
  const quote = Math.min(srcLen, room);
  const icmp = dstOff + IPV6_HDR_LEN;
  const data = icmp + ICMP6_HDR_LEN;
  // The quote and the offender's source first: in a shared buffer they may overlap.
  const to = dstOff + IPV6_DST;
  if (dst === src) {
    dst.copyWithin(data, srcOff, srcOff + quote);
    dst.copyWithin(to, data + IPV6_SRC, data + IPV6_SRC + 16);
  } else {
    dst.set(src.subarray(srcOff, srcOff + quote), data);
    dst.set(src.subarray(srcOff + IPV6_SRC, srcOff + IPV6_SRC + 16), to);
  }
  dst.set(e.from, dstOff + IPV6_SRC);
  const len = ICMP6_HDR_LEN + quote;
  dst[icmp] = e.type;
  dst[icmp + 1] = e.code;
  write16(dst, icmp + 2, 0);
  write32(dst, icmp + 4, e.value);
  writeIpv6Fixed(dst, dstOff, len, e.hopLimit);
  write16(
    dst,
    icmp + 2,
    internetChecksum(dst, icmp, len, ipv6PseudoHeaderSum(dst, dstOff, IPPROTO_ICMPV6, len)),
  );
  return IPV6_HDR_LEN + len;
}

/** Version, class 0, flow 0, payload length, next header ICMPv6, hop limit. */
function writeIpv6Fixed(buf: Uint8Array, off: number, payload: number, hopLimit: number): void {
  write32(buf, off, 0x60000000);
  write16(buf, off + IPV6_PAYLOAD_LEN, payload);
  buf[off + IPV6_NEXT_HEADER] = IPPROTO_ICMPV6;
  buf[off + IPV6_HOP_LIMIT] = hopLimit;
}

function isUnspecified(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/** ff02::1:ffXX:XXXX (RFC 4291 §2.7.1). */
function isSolicitedNode(buf: Uint8Array, off: number): boolean {
  if (buf[off] !== 0xff || buf[off + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 11] === 0x01 && buf[off + 12] === 0xff;
}
