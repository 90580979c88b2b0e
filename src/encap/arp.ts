// ARP for IPv4 over Ethernet (RFC 826); anything else is not ours to answer.

import { writeIpv4, writeMac } from "./addr.js";
import { read16, write16 } from "./bytes.js";
import { Drop } from "./drop.js";

const ARP_HTYPE = 0;
const ARP_PTYPE = 2;
const ARP_HLEN = 4;
const ARP_PLEN = 5;
const ARP_OP = 6;
const ARP_SHA = 8;
const ARP_SPA = 14;
const ARP_THA = 18;
const ARP_TPA = 24;
export const ARP_LEN = 28;

const ARP_HTYPE_ETHERNET = 1;
const ARP_PTYPE_IPV4 = 0x0800;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export interface ArpInfo {
  op: number;
  sha: number;
  spa: number;
  tha: number;
  tpa: number;
}

export function newArpInfo(): ArpInfo {
  return { op: 0, sha: 0, spa: 0, tha: 0, tpa: 0 };
}

export function arpParse(buf: Uint8Array, off: number, len: number, out: ArpInfo): Drop {
  if (len < ARP_LEN) return Drop.ArpTruncated;
  if (
    read16(buf, off + ARP_HTYPE) !== ARP_HTYPE_ETHERNET ||
    read16(buf, off + ARP_PTYPE) !== ARP_PTYPE_IPV4 ||
    buf[off + ARP_HLEN] !== 6 ||
    buf[off + ARP_PLEN] !== 4
  ) {
    return Drop.ArpBadFormat;
  }
  const op = read16(buf, off + ARP_OP);
  if (op !== ARP_OP_REQUEST && op !== ARP_OP_REPLY) return Drop.ArpBadOp;
  out.op = op;
  // Addresses are assembled here, not returned by readMac()/readIpv4(): see ethernetParse
  // (no call may return a value that would be boxed).
  let o = off + ARP_SHA;
  out.sha = read16(buf, o) * 0x100000000 + read16(buf, o + 2) * 0x10000 + read16(buf, o + 4);
  o = off + ARP_SPA;
  out.spa = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
  o = off + ARP_THA;
  out.tha = read16(buf, o) * 0x100000000 + read16(buf, o + 2) * 0x10000 + read16(buf, o + 4);
  o = off + ARP_TPA;
  out.tpa = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
  return Drop.None;
}

/** Write a complete ARP body from `arp`; returns the end offset. */
export function arpWrite(buf: Uint8Array, off: number, arp: ArpInfo): number {
  write16(buf, off + ARP_HTYPE, ARP_HTYPE_ETHERNET);
  write16(buf, off + ARP_PTYPE, ARP_PTYPE_IPV4);
  buf[off + ARP_HLEN] = 6;
  buf[off + ARP_PLEN] = 4;
  write16(buf, off + ARP_OP, arp.op);
  writeMac(buf, off + ARP_SHA, arp.sha);
  writeIpv4(buf, off + ARP_SPA, arp.spa);
  writeMac(buf, off + ARP_THA, arp.tha);
  writeIpv4(buf, off + ARP_TPA, arp.tpa);
  return off + ARP_LEN;
}

const request = newArpInfo();

/** Who-has `tpa`? The target hardware address is unknown, so zero. */
export function arpWriteRequest(
  buf: Uint8Array,
  off: number,
  sha: number,
  spa: number,
  tpa: number,
): number {
  request.op = ARP_OP_REQUEST;
  request.sha = sha;
  request.spa = spa;
  request.tpa = tpa;
  return arpWrite(buf, off, request);
}

/**
 * Proxy ARP: rewrite a parsed request in place into the reply "tpa is at `mac`".
 * The asker becomes the target; no copy, the request slot goes back out.
 */
export function arpRequestToReply(buf: Uint8Array, off: number, mac: number): void {
  for (let i = 0; i < 6; i++) buf[off + ARP_THA + i] = buf[off + ARP_SHA + i];
  for (let i = 0; i < 4; i++) {
    const t = buf[off + ARP_TPA + i];
    buf[off + ARP_TPA + i] = buf[off + ARP_SPA + i];
    buf[off + ARP_SPA + i] = t;
  }
  writeMac(buf, off + ARP_SHA, mac);
  write16(buf, off + ARP_OP, ARP_OP_REPLY);
}
