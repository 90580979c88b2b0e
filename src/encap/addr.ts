// Addresses as plain numbers, so tables can key on them and the hot path never
// allocates: a MAC is a 48-bit integer (exact in a double), an IPv4 address an
// unsigned 32-bit integer in host order (a.b.c.d -> a<<24 | b<<16 | c<<8 | d).

/** Read a MAC at buf[off..off+6) as a 48-bit integer. */
export function readMac(buf: Uint8Array, off: number): number {
  return (
    buf[off] * 0x10000000000 +
    buf[off + 1] * 0x100000000 +
    ((buf[off + 2] << 24) >>> 0) +
    (buf[off + 3] << 16) +
    (buf[off + 4] << 8) +
    buf[off + 5]
  );
}

/** Write a 48-bit MAC integer at buf[off..off+6). */
export function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x100000000);
  const lo = mac >>> 0;
  buf[off] = hi >>> 8;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** Group bit (I/G): set for broadcast and multicast destinations. */
export function isMulticastMac(mac: number): boolean {
  return Math.floor(mac / 0x10000000000) % 2 === 1;
}

export const ZERO_MAC = 0;

const MAC_RE = /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i;

/** Parse "aa:bb:cc:dd:ee:ff"; returns undefined when malformed. */
export function parseMac(text: string): number | undefined {
  if (!MAC_RE.test(text)) return undefined;
  return Number.parseInt(text.replaceAll(":", ""), 16);
}

export function formatMac(mac: number): string {
  return mac
    .toString(16)
    .padStart(12, "0")
    .replace(/(..)(?!$)/g, "$1:");
}

/** An IPv4 address on the wire is its 32-bit big-endian word. */
export { read32 as readIpv4, write32 as writeIpv4 } from "./bytes.js";

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parse dotted-quad IPv4; returns undefined when malformed. */
export function parseIpv4(text: string): number | undefined {
  const m = IPV4_RE.exec(text);
  if (!m) return undefined;
  let ip = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255 || (m[i].length > 1 && m[i][0] === "0")) return undefined;
    ip = ip * 256 + octet;
  }
  return ip;
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** Parse "a.b.c.d/len" into network address (host bits cleared) and prefix length. */
export function parseCidr(text: string): { addr: number; len: number } | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addr = parseIpv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (addr === undefined || !/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  return { addr: (addr & prefixMask(len)) >>> 0, len };
}

/** Netmask for a prefix length, as an unsigned 32-bit integer. */
export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}
