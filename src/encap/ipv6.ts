// IPv6 fixed header (RFC 8200), as far as the data path needs it: the parse that every
// routed IPv6 packet goes through (version, lengths, jumbograms refused), the L4
// checksum's pseudo-header (RFC 8200 §8.1), and the walk over the options headers a
// sender may put in front of TCP or UDP when a TSO6/USO6 super-frame is cut.
import { read16 } from "./bytes.js";
import { Drop } from "./drop.js";

export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;
export const IPV6_HDR_LEN = 40;
/** Next-header values of the extension headers that may precede TCP or UDP here. */
export const IPPROTO_HOPOPTS = 0;
const IPPROTO_DSTOPTS = 60;

/** What ipv6Parse reads; the caller owns one and passes it each time. */
export interface Ipv6Info {
  /** Header + payload: what the packet occupies (trailing bytes beyond it are padding). */
  totalLen: number;
  nextHeader: number;
  hopLimit: number;
}

export function newIpv6Info(): Ipv6Info {
  return { totalLen: 0, nextHeader: 0, hopLimit: 0 };
}

/**
 * Check the fixed header of the packet at buf[off..off+len) and fill `out`. The
 * addresses stay where they are: callers read them at off + IPV6_SRC / IPV6_DST.
 * A payload length of 0 announces a jumbogram (RFC 2675) in a hop-by-hop option; no
 * tunnel MTU carries one, so it is refused rather than parsed.
 */
export function ipv6Parse(buf: Uint8Array, off: number, len: number, out: Ipv6Info): Drop {
  if (len < IPV6_HDR_LEN) return Drop.Ipv6Truncated;
  if (buf[off] >>> 4 !== 6) return Drop.Ipv6BadVersion;
  const payload = read16(buf, off + IPV6_PAYLOAD_LEN);
  const next = buf[off + IPV6_NEXT_HEADER];
  if (payload === 0 && next === IPPROTO_HOPOPTS) return Drop.Ipv6Jumbogram;
  if (IPV6_HDR_LEN + payload > len) return Drop.Ipv6Truncated;
  out.totalLen = IPV6_HDR_LEN + payload;
  out.nextHeader = next;
  out.hopLimit = buf[off + IPV6_HOP_LIMIT];
  return Drop.None;
}

/** Traffic class: the 8 bits after the version nibble. */
export function ipv6TrafficClass(buf: Uint8Array, off: number): number {
  return ((buf[off] & 0x0f) << 4) | (buf[off + 1] >>> 4);
}

/**
 * Unfolded sum of the IPv6 pseudo-header (source, destination, upper-layer length,
 * next header) for the L4 packet of `length` bytes behind the header at `ipOff`.
 */
export function ipv6PseudoHeaderSum(
  buf: Uint8Array,
  ipOff: number,
  protocol: number,
  length: number,
): number {
  let s = protocol + (length >>> 16) + (length & 0xffff);
  for (let a = ipOff + IPV6_SRC; a < ipOff + IPV6_DST + 16; a += 2) s += read16(buf, a);
  return s;
}

/**
 * Offset from the IPv6 header at `off` (`len` bytes available) to its upper-layer
 * header when that is `protocol`: the fixed header, then any hop-by-hop options header
 * (first only) and destination options headers, each (hdr ext len + 1) * 8 bytes long
 * (RFC 8200 §4). 0 when the chain ends in anything else, runs past `len`, or holds any
 * other extension header: a routing header would make its final destination the
 * pseudo-header's (§8.1), a fragment header has no place in a super-frame, and
 * AH/ESP are not ours to cut.
 */
export function ipv6UpperOffset(
  buf: Uint8Array,
  off: number,
  len: number,
  protocol: number,
): number {
  let next = buf[off + IPV6_NEXT_HEADER];
  let at = IPV6_HDR_LEN;
  // At most a hop-by-hop and two destination options headers (§4.1); one more is slack.
  for (let i = 0; i < 4 && next !== protocol; i++) {
    if (next !== IPPROTO_DSTOPTS && (next !== IPPROTO_HOPOPTS || i > 0)) return 0;
    if (at + 8 > len) return 0;
    next = buf[off + at];
    at += (buf[off + at + 1] + 1) * 8;
  }
  return next === protocol && at <= len ? at : 0;
}
