// IPv6 fixed header (RFC 8200), as far as the data path needs it: vxtun carries IPv6
// only inside Ethernet frames (vxlan-l2 bridges them), and touches an IPv6 header only
// when it cuts a TSO6/USO6 super-frame from the TAP into segments (payload length, the
// L4 checksum's pseudo-header, RFC 8200 §8.1), stepping over the options headers a
// sender may put in front of TCP or UDP.
import { read16 } from "./bytes.js";

export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
const IPV6_SRC = 8;
const IPV6_DST = 24;
export const IPV6_HDR_LEN = 40;
/** Next-header values of the extension headers that may precede TCP or UDP here. */
const IPPROTO_HOPOPTS = 0;
const IPPROTO_DSTOPTS = 60;

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
