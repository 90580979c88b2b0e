// ICMP for IPv4 (RFC 792): echo, destination unreachable (incl. RFC 1191
// fragmentation needed), time exceeded; and the error builder the dataplane uses to
// answer a sender through the TUN.

import { readIpv4 } from "./addr.js";
import { read16, write16 } from "./bytes.js";
import { checksumOk, checksumUpdate16, internetChecksum } from "./checksum.js";
import { Drop } from "./drop.js";
import {
  IPPROTO_ICMP,
  IPV4_DF,
  IPV4_DST,
  IPV4_FLAGS_FRAG,
  IPV4_FRAG_MASK,
  IPV4_HDR_LEN,
  IPV4_PROTOCOL,
  IPV4_SRC,
  type Ipv4Fields,
  ipv4Write,
  newIpv4Fields,
} from "./ipv4.js";

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CHECKSUM = 2;
/** Echo: identifier and sequence. */
export const ICMP_ID = 4;
export const ICMP_SEQ = 6;
/** Frag-needed: bytes 4-5 unused, next-hop MTU in 6-7 (RFC 1191). */
export const ICMP_MTU = 6;
export const ICMP_HDR_LEN = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

/** Codes: fragmentation needed (type 3), TTL exceeded in transit (type 11). */
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_TTL_EXCEEDED = 0;

/** RFC 792 quotes the offending IP header plus the first 8 bytes of its payload. */
export const ICMP_QUOTE_PAYLOAD = 8;
/** IPv4 + ICMP header in front of the quote. */
export const ICMP_ERROR_OVERHEAD = IPV4_HDR_LEN + ICMP_HDR_LEN;
/** Largest error we build: max IHL (60) + 8 quoted bytes. */
export const ICMP_ERROR_MAX_LEN = ICMP_ERROR_OVERHEAD + 60 + ICMP_QUOTE_PAYLOAD;
/** Precedence "internetwork control", as Linux marks its ICMP errors. */
export const ICMP_ERROR_TOS = 0xc0;

export interface IcmpInfo {
  type: number;
  code: number;
  checksum: number;
  /** Echo identifier / sequence (0 for other types). */
  id: number;
  seq: number;
  /** Next-hop MTU of a frag-needed message (0 otherwise). */
  mtu: number;
  /** After the 8-byte header: echo data, or the quoted original packet of an error. */
  dataOff: number;
  dataLen: number;
}

export function newIcmpInfo(): IcmpInfo {
  return { type: 0, code: 0, checksum: 0, id: 0, seq: 0, mtu: 0, dataOff: 0, dataLen: 0 };
}

/** `len` is the ICMP message length (IP payload length). */
export function icmpParse(buf: Uint8Array, off: number, len: number, out: IcmpInfo): Drop {
  if (len < ICMP_HDR_LEN) return Drop.IcmpTruncated;
  if (!checksumOk(buf, off, len)) {
    return Drop.IcmpBadChecksum;
  }
  const type = buf[off + ICMP_TYPE];
  const code = buf[off + ICMP_CODE];
  const echo = type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY;
  out.type = type;
  out.code = code;
  out.checksum = read16(buf, off + ICMP_CHECKSUM);
  out.id = echo ? read16(buf, off + ICMP_ID) : 0;
  out.seq = echo ? read16(buf, off + ICMP_SEQ) : 0;
  out.mtu =
    type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED ? read16(buf, off + ICMP_MTU) : 0;
  out.dataOff = off + ICMP_HDR_LEN;
  out.dataLen = len - ICMP_HDR_LEN;
  return Drop.None;
}

/**
 * Write an echo header (type, id and seq of `echo`) over the echo.dataLen bytes of data
 * already in place after it; returns the end offset.
 */
export function icmpWriteEcho(buf: Uint8Array, off: number, echo: IcmpInfo): number {
  const len = ICMP_HDR_LEN + echo.dataLen;
  buf[off + ICMP_TYPE] = echo.type;
  buf[off + ICMP_CODE] = 0;
  write16(buf, off + ICMP_CHECKSUM, 0);
  write16(buf, off + ICMP_ID, echo.id);
  write16(buf, off + ICMP_SEQ, echo.seq);
  write16(buf, off + ICMP_CHECKSUM, internetChecksum(buf, off, len));
  return off + len;
}

/** Echo request -> reply in place; only the type word changes, so update incrementally. */
export function icmpEchoToReply(buf: Uint8Array, off: number): void {
  const old = read16(buf, off);
  buf[off + ICMP_TYPE] = ICMP_ECHO_REPLY;
  const csum = read16(buf, off + ICMP_CHECKSUM);
  write16(buf, off + ICMP_CHECKSUM, checksumUpdate16(csum, old, read16(buf, off)));
}

/** What icmpWriteError writes; the caller owns one and fills it. */
export interface IcmpErrorParams {
  type: number;
  code: number;
  /** Next-hop MTU (frag-needed only). */
  mtu: number;
  /** Our address on the path: the error's source. */
  from: number;
  ttl: number;
  /** The error's IPv4 id. */
  id: number;
}

export function newIcmpErrorParams(): IcmpErrorParams {
  return { type: ICMP_DEST_UNREACH, code: ICMP_FRAG_NEEDED, mtu: 0, from: 0, ttl: 64, id: 0 };
}

/** The error's IPv4 header (one per thread: the writer does not re-enter). */
const errorHdr: Ipv4Fields = {
  ...newIpv4Fields(),
  tos: ICMP_ERROR_TOS,
  flags: IPV4_DF,
  protocol: IPPROTO_ICMP,
};

/**
 * Write a complete IPv4 + ICMP error (frag-needed when type 3 / code 4 with `mtu`,
 * time exceeded, other unreachables) answering the packet at src[srcOff..+srcLen),
 * whose IPv4 header the caller has already validated. The answer goes from `e.from`
 * (our address on that path) to the offender's source. Returns the bytes written at
 * dst[dstOff..), or 0 when RFC 1122 3.2.2 / RFC 1812 4.3.2.7 forbid an answer: the
 * offender is itself an ICMP error, a non-first fragment, or from an address that is
 * not a unicast host. `dst` needs ICMP_ERROR_MAX_LEN bytes of room; it may be the
 * same buffer as `src`, overlapping or not (everything is read before it is written).
 */
export function icmpWriteError(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  e: IcmpErrorParams,
): number {
  const type = e.type;
  const code = e.code;
  if (srcLen < IPV4_HDR_LEN) return 0;
  const hdrLen = (src[srcOff] & 0x0f) * 4;
  if (hdrLen < IPV4_HDR_LEN || hdrLen > srcLen) return 0;
  if ((read16(src, srcOff + IPV4_FLAGS_FRAG) & IPV4_FRAG_MASK) !== 0) return 0;
  const to = readIpv4(src, srcOff + IPV4_SRC);
  const origDst = readIpv4(src, srcOff + IPV4_DST);
  if (!isUnicastHost(to) || origDst >>> 28 === 0xe || origDst === 0xffffffff) return 0;
  if (src[srcOff + IPV4_PROTOCOL] === IPPROTO_ICMP) {
    const icmpType = hdrLen < srcLen ? src[srcOff + hdrLen] : ICMP_ECHO_REQUEST;
    if (!isQueryType(icmpType)) return 0;
  }
  let quote = hdrLen + ICMP_QUOTE_PAYLOAD;
  if (quote > srcLen) quote = srcLen;
  const icmpOff = dstOff + IPV4_HDR_LEN;
  const dataOff = icmpOff + ICMP_HDR_LEN;
  // Copy the quote before writing headers: in a shared buffer they may overlap it.
  if (dst === src) {
    dst.copyWithin(dataOff, srcOff, srcOff + quote);
  } else {
    for (let i = 0; i < quote; i++) dst[dataOff + i] = src[srcOff + i];
  }
  const icmpLen = ICMP_HDR_LEN + quote;
  dst[icmpOff + ICMP_TYPE] = type;
  dst[icmpOff + ICMP_CODE] = code;
  write16(dst, icmpOff + ICMP_CHECKSUM, 0);
  write16(dst, icmpOff + 4, 0);
  write16(
    dst,
    icmpOff + ICMP_MTU,
    type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED ? e.mtu : 0,
  );
  write16(dst, icmpOff + ICMP_CHECKSUM, internetChecksum(dst, icmpOff, icmpLen));
  const h = errorHdr;
  h.totalLen = IPV4_HDR_LEN + icmpLen;
  h.id = e.id;
  h.ttl = e.ttl;
  h.src = e.from;
  h.dst = to;
  ipv4Write(dst, dstOff, h);
  return IPV4_HDR_LEN + icmpLen;
}

function isUnicastHost(ip: number): boolean {
  const top = ip >>> 24;
  return top !== 0 && top !== 127 && top < 224;
}

/** Informational types may be answered with an error; errors never (RFC 1122). */
function isQueryType(type: number): boolean {
  return type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY || type === 13 || type === 14;
}
