// Ethernet II with at most one 802.1Q tag.

import { writeMac } from "./addr.js";
import { read16, write16 } from "./bytes.js";
import { Drop } from "./drop.js";

export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export const ETH_HDR_LEN = 14;
/** With a tag, TCI sits where the ethertype was and the real ethertype follows. */
const ETH_VLAN_TCI = 14;
export const ETH_VLAN_TYPE = 16;
export const ETH_VLAN_HDR_LEN = 18;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;
/** Values below this are 802.3 lengths (LLC frames, e.g. STP), not ethertypes. */
const ETHERTYPE_MIN = 0x0600;

export interface EthernetInfo {
  dst: number;
  src: number;
  /** Ethertype of the payload (after the tag, if any). */
  ethertype: number;
  /** VLAN id 0..4095, or -1 when untagged. */
  vlan: number;
  pcp: number;
  payloadOff: number;
  payloadLen: number;
}

export function newEthernetInfo(): EthernetInfo {
  return { dst: 0, src: 0, ethertype: 0, vlan: -1, pcp: 0, payloadOff: 0, payloadLen: 0 };
}

export function ethernetParse(buf: Uint8Array, off: number, len: number, out: EthernetInfo): Drop {
  if (len < ETH_HDR_LEN) return Drop.EthTruncated;
  let type = read16(buf, off + ETH_TYPE);
  let hdr = ETH_HDR_LEN;
  out.vlan = -1;
  out.pcp = 0;
  if (type === ETHERTYPE_VLAN) {
    if (len < ETH_VLAN_HDR_LEN) return Drop.EthTruncated;
    const tci = read16(buf, off + ETH_VLAN_TCI);
    out.vlan = tci & 0x0fff;
    out.pcp = tci >>> 13;
    type = read16(buf, off + ETH_VLAN_TYPE);
    hdr = ETH_VLAN_HDR_LEN;
  }
  // A second tag (QinQ) or an 802.3 length field: nothing here knows what follows.
  if (type < ETHERTYPE_MIN || type === ETHERTYPE_VLAN) return Drop.UnsupportedEthertype;
  // MACs are summed here from 16-bit words rather than returned by readMac(): a 48-bit
  // double returned from a call the optimizer did not inline is boxed in a fresh
  // HeapNumber (one allocation per packet), where read16's result is always a small
  // integer. Stored straight into a double field, the sum is written in place.
  const d = off + ETH_DST;
  const s = off + ETH_SRC;
  out.dst = read16(buf, d) * 0x100000000 + read16(buf, d + 2) * 0x10000 + read16(buf, d + 4);
  out.src = read16(buf, s) * 0x100000000 + read16(buf, s + 2) * 0x10000 + read16(buf, s + 4);
  out.ethertype = type;
  out.payloadOff = off + hdr;
  out.payloadLen = len - hdr;
  return Drop.None;
}

/** Write an untagged header at `off`; returns the payload offset. */
export function ethernetWrite(
  buf: Uint8Array,
  off: number,
  dst: number,
  src: number,
  ethertype: number,
): number {
  writeMac(buf, off + ETH_DST, dst);
  writeMac(buf, off + ETH_SRC, src);
  write16(buf, off + ETH_TYPE, ethertype);
  return off + ETH_HDR_LEN;
}

/** Write a header with one 802.1Q tag; returns the payload offset. */
export function ethernetWriteVlan(
  buf: Uint8Array,
  off: number,
  dst: number,
  src: number,
  vlan: number,
  pcp: number,
  ethertype: number,
): number {
  ethernetWrite(buf, off, dst, src, ETHERTYPE_VLAN);
  write16(buf, off + ETH_VLAN_TCI, ((pcp & 7) << 13) | (vlan & 0x0fff));
  write16(buf, off + ETH_VLAN_TYPE, ethertype);
  return off + ETH_VLAN_HDR_LEN;
}

/** Turn a received frame's header around for an answer sent from `src` (tag kept). */
export function ethernetReplyHeader(buf: Uint8Array, off: number, src: number): void {
  for (let i = 0; i < 6; i++) buf[off + ETH_DST + i] = buf[off + ETH_SRC + i];
  writeMac(buf, off + ETH_SRC, src);
}
