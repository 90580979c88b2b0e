// IPv6 addresses for the control path: text in and out through ipaddr.js (RFC 4291
// forms in, RFC 5952 canonical text out, as iproute2 prints), bytes in network order
// everywhere else. The data path never sees text: it reads the 16 bytes in the packet.
import ipaddr from "ipaddr.js";

export const IPV6_LEN = 16;

/** Parse an IPv6 address ("2001:db8::1", "::ffff:198.18.0.1"); undefined when malformed. */
export function parseIpv6(text: string): Uint8Array | undefined {
  // A zone ("fe80::1%eth0") names a link, not an address: tables hold no zones.
  if (text.includes("%") || !ipaddr.IPv6.isValid(text)) return undefined;
  return Uint8Array.from(ipaddr.IPv6.parse(text).toByteArray());
}

/** RFC 5952 text of the 16 bytes at buf[off]. */
export function formatIpv6(buf: Uint8Array, off = 0): string {
  return ipaddr.fromByteArray(Array.from(buf.subarray(off, off + IPV6_LEN))).toString();
}

/** Parse "addr/len" (len 0..128); undefined when malformed. */
export function parseCidr6(text: string): { addr: Uint8Array; len: number } | undefined {
  const slash = text.indexOf("/");
  if (slash < 0 || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const len = Number(text.slice(slash + 1));
  const addr = parseIpv6(text.slice(0, slash));
  return addr === undefined || len > 128 ? undefined : { addr, len };
}

/** A copy of addr with the bits after the first len cleared. */
export function maskIpv6(addr: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(IPV6_LEN);
  for (let i = 0; i < IPV6_LEN; i++) {
    const bits = Math.min(8, Math.max(0, len - 8 * i));
    out[i] = addr[i] & ((0xff00 >>> bits) & 0xff);
  }
  return out;
}

/** True when the 16 bytes at a[ao] and b[bo] are equal. */
export function equalIpv6(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < IPV6_LEN; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** All zeros (the unspecified address, "no gateway"). */
export function isZeroIpv6(a: Uint8Array): boolean {
  for (let i = 0; i < IPV6_LEN; i++) if (a[i] !== 0) return false;
  return true;
}
