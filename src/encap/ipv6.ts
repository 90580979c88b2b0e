// IPv6 fixed header (RFC 8200), as far as the data path needs it: vxtun carries IPv6
// only inside Ethernet frames (vxlan-l2 bridges them), and touches an IPv6 header only
// when it cuts a TSO6/USO6 super-frame from the TAP into segments (payload length, the
// L4 checksum's pseudo-header, RFC 8200 §8.1).
import { read16 } from "./bytes.js";

export const IPV6_VER_TC_FLOW = 0;
export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;
export const IPV6_HDR_LEN = 40;

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
