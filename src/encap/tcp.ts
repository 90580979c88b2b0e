// TCP (RFC 9293), only as far as flow hashing and checksum checks need.

import { read16, write16, write32 } from "./bytes.js";
import { checksumOk, internetChecksum } from "./checksum.js";
import { Drop } from "./drop.js";

export const TCP_SRC_PORT = 0;
export const TCP_DST_PORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_DATA_OFF = 12;
export const TCP_FLAGS = 13;
export const TCP_WINDOW = 14;
export const TCP_CHECKSUM = 16;
export const TCP_URGENT = 18;
export const TCP_HDR_LEN = 20;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK_FLAG = 0x10;

export interface TcpInfo {
  srcPort: number;
  dstPort: number;
  hdrLen: number;
  flags: number;
  checksum: number;
  payloadOff: number;
  payloadLen: number;
}

export function newTcpInfo(): TcpInfo {
  return { srcPort: 0, dstPort: 0, hdrLen: 0, flags: 0, checksum: 0, payloadOff: 0, payloadLen: 0 };
}

/** `len` is the segment length (IP payload length). */
export function tcpParse(buf: Uint8Array, off: number, len: number, out: TcpInfo): Drop {
  if (len < TCP_HDR_LEN) return Drop.TcpTruncated;
  const hdrLen = (buf[off + TCP_DATA_OFF] >>> 4) * 4;
  if (hdrLen < TCP_HDR_LEN || hdrLen > len) return Drop.TcpBadOffset;
  out.srcPort = read16(buf, off + TCP_SRC_PORT);
  out.dstPort = read16(buf, off + TCP_DST_PORT);
  out.hdrLen = hdrLen;
  out.flags = buf[off + TCP_FLAGS];
  out.checksum = read16(buf, off + TCP_CHECKSUM);
  out.payloadOff = off + hdrLen;
  out.payloadLen = len - hdrLen;
  return Drop.None;
}

/** Write a 20-byte header (checksum left 0); returns the payload offset. */
export function tcpWrite(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
): number {
  write16(buf, off + TCP_SRC_PORT, srcPort);
  write16(buf, off + TCP_DST_PORT, dstPort);
  write32(buf, off + TCP_SEQ, seq);
  write32(buf, off + TCP_ACK, ack);
  buf[off + TCP_DATA_OFF] = 5 << 4;
  buf[off + TCP_FLAGS] = flags;
  write16(buf, off + TCP_WINDOW, window);
  write16(buf, off + TCP_CHECKSUM, 0);
  write16(buf, off + TCP_URGENT, 0);
  return off + TCP_HDR_LEN;
}

/**
 * The checksum functions cover the `len`-byte segment at `off` (the IP payload) and take
 * `pseudo`, its unfolded pseudo-header sum: ipv4PseudoHeaderSum or ipv6PseudoHeaderSum
 * read from the IP header in front (no 32-bit address passes through a call, where it
 * would be boxed), or pseudoHeaderSum from addresses in hand. So one function serves
 * either IP version.
 */
export function tcpFillChecksum(buf: Uint8Array, off: number, len: number, pseudo: number): void {
  write16(buf, off + TCP_CHECKSUM, 0);
  write16(buf, off + TCP_CHECKSUM, internetChecksum(buf, off, len, pseudo));
}

export function tcpChecksumOk(buf: Uint8Array, off: number, len: number, pseudo: number): boolean {
  return checksumOk(buf, off, len, pseudo);
}
