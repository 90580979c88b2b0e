// TCP (RFC 9293), only as far as flow hashing and checksum checks need.

import { read16, write16, write32 } from "./bytes.js";
import { checksumOk, internetChecksum } from "./checksum.js";
import { Drop } from "./drop.js";

const TCP_SRC_PORT = 0;
const TCP_DST_PORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_DATA_OFF = 12;
export const TCP_FLAGS = 13;
export const TCP_WINDOW = 14;
export const TCP_CHECKSUM = 16;
const TCP_URGENT = 18;
const TCP_HDR_LEN = 20;

export const TCP_SYN = 0x02;
export const TCP_PSH = 0x08;
export const TCP_ACK_FLAG = 0x10;

/** A TCP header as tcpParse reads it and tcpWrite writes it (options are skipped). */
export interface TcpInfo {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  hdrLen: number;
  flags: number;
  window: number;
  checksum: number;
  payloadOff: number;
  payloadLen: number;
}

export function newTcpInfo(): TcpInfo {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    hdrLen: 0,
    flags: 0,
    window: 0,
    checksum: 0,
    payloadOff: 0,
    payloadLen: 0,
  };
}

/** `len` is the segment length (IP payload length). */
export function tcpParse(buf: Uint8Array, off: number, len: number, out: TcpInfo): Drop {
  if (len < TCP_HDR_LEN) return Drop.TcpTruncated;
  const hdrLen = (buf[off + TCP_DATA_OFF] >>> 4) * 4;
  if (hdrLen < TCP_HDR_LEN || hdrLen > len) return Drop.TcpBadOffset;
  out.srcPort = read16(buf, off + TCP_SRC_PORT);
  out.dstPort = read16(buf, off + TCP_DST_PORT);
  // 32-bit fields from 16-bit halves: no call returns a value that would be boxed.
  out.seq = read16(buf, off + TCP_SEQ) * 0x10000 + read16(buf, off + TCP_SEQ + 2);
  out.ack = read16(buf, off + TCP_ACK) * 0x10000 + read16(buf, off + TCP_ACK + 2);
  out.hdrLen = hdrLen;
  out.flags = buf[off + TCP_FLAGS];
  out.window = read16(buf, off + TCP_WINDOW);
  out.checksum = read16(buf, off + TCP_CHECKSUM);
  out.payloadOff = off + hdrLen;
  out.payloadLen = len - hdrLen;
  return Drop.None;
}

/**
 * Write a 20-byte header from the ports, seq, ack, flags and window of `tcp` (checksum
 * left 0); returns the payload offset.
 */
export function tcpWrite(buf: Uint8Array, off: number, tcp: TcpInfo): number {
  write16(buf, off + TCP_SRC_PORT, tcp.srcPort);
  write16(buf, off + TCP_DST_PORT, tcp.dstPort);
  write32(buf, off + TCP_SEQ, tcp.seq);
  write32(buf, off + TCP_ACK, tcp.ack);
  buf[off + TCP_DATA_OFF] = (TCP_HDR_LEN / 4) << 4;
  buf[off + TCP_FLAGS] = tcp.flags;
  write16(buf, off + TCP_WINDOW, tcp.window);
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
