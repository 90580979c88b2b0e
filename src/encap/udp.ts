// UDP (RFC 768). A zero checksum means "none" (IPv4) and is accepted.

import { read16, write16 } from "./bytes.js";
import { checksumFold, checksumOk, checksumSum } from "./checksum.js";
import { Drop } from "./drop.js";

const UDP_SRC_PORT = 0;
const UDP_DST_PORT = 2;
export const UDP_LENGTH = 4;
export const UDP_CHECKSUM = 6;
export const UDP_HDR_LEN = 8;

export interface UdpInfo {
  srcPort: number;
  dstPort: number;
  /** The length field: header + payload. */
  length: number;
  checksum: number;
  payloadOff: number;
  payloadLen: number;
}

export function newUdpInfo(): UdpInfo {
  return { srcPort: 0, dstPort: 0, length: 0, checksum: 0, payloadOff: 0, payloadLen: 0 };
}

/**
 * `len` is what the IP layer says the datagram spans; the length field must fit in it
 * (RFC 768 lets it be shorter; the rest is then not UDP payload).
 */
export function udpParse(buf: Uint8Array, off: number, len: number, out: UdpInfo): Drop {
  if (len < UDP_HDR_LEN) return Drop.UdpTruncated;
  const length = read16(buf, off + UDP_LENGTH);
  if (length < UDP_HDR_LEN || length > len) return Drop.UdpBadLength;
  out.srcPort = read16(buf, off + UDP_SRC_PORT);
  out.dstPort = read16(buf, off + UDP_DST_PORT);
  out.length = length;
  out.checksum = read16(buf, off + UDP_CHECKSUM);
  out.payloadOff = off + UDP_HDR_LEN;
  out.payloadLen = length - UDP_HDR_LEN;
  return Drop.None;
}

/** Write a header with checksum 0 (none); returns the payload offset. */
export function udpWrite(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  length: number,
): number {
  write16(buf, off + UDP_SRC_PORT, srcPort);
  write16(buf, off + UDP_DST_PORT, dstPort);
  write16(buf, off + UDP_LENGTH, length);
  write16(buf, off + UDP_CHECKSUM, 0);
  return off + UDP_HDR_LEN;
}

/**
 * Checksum over pseudo-header + the `len`-byte datagram (its length field's value) at
 * `off`; a computed 0 goes out as 0xffff. `pseudo` is the unfolded pseudo-header sum,
 * as for the TCP checksum functions (see tcp.ts).
 */
export function udpChecksum(buf: Uint8Array, off: number, len: number, pseudo: number): number {
  // The unfolded sum is a plain integer sum of words, so the field's current value can
  // be subtracted instead of zeroing it first (the buffer stays untouched).
  const sum = checksumSum(buf, off, len, pseudo) - read16(buf, off + UDP_CHECKSUM);
  const c = ~checksumFold(sum) & 0xffff;
  return c === 0 ? 0xffff : c;
}

export function udpFillChecksum(buf: Uint8Array, off: number, len: number, pseudo: number): void {
  write16(buf, off + UDP_CHECKSUM, udpChecksum(buf, off, len, pseudo));
}

/** True when the checksum is absent (0) or verifies. */
export function udpChecksumOk(buf: Uint8Array, off: number, len: number, pseudo: number): boolean {
  return read16(buf, off + UDP_CHECKSUM) === 0 || checksumOk(buf, off, len, pseudo);
}
