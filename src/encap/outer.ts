// Full outer Ethernet + IPv4 + UDP headers around a tunnel payload. Real sending goes
// through a UDP socket where the kernel writes these; this is for raw paths, captures
// and tests.

import { write16 } from "./bytes.js";
import { checksumFold, checksumSum } from "./checksum.js";
import { Drop } from "./drop.js";
import {
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
  type EthernetInfo,
  ethernetParse,
  ethernetWrite,
  newEthernetInfo,
} from "./ethernet.js";
import {
  IPPROTO_UDP,
  IPV4_DF,
  IPV4_HDR_LEN,
  IPV4_MAX_LEN,
  type Ipv4Info,
  ipv4Parse,
  ipv4PseudoHeaderSum,
  ipv4Write,
  newIpv4Fields,
  newIpv4Info,
} from "./ipv4.js";
import {
  newUdpInfo,
  UDP_CHECKSUM,
  UDP_HDR_LEN,
  type UdpInfo,
  udpChecksumOk,
  udpParse,
  udpWrite,
} from "./udp.js";

export const OUTER_UDP_HDR_LEN = ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN;

/** Reusable description of the outer headers (one per peer or per stage). */
export interface OuterParams {
  srcMac: number;
  dstMac: number;
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  ttl: number;
  tos: number;
  df: boolean;
  id: number;
  /** Compute the UDP checksum; otherwise 0 (allowed over IPv4, RFC 7348 sec. 5). */
  udpChecksum: boolean;
}

export function newOuterParams(): OuterParams {
  return {
    srcMac: 0,
    dstMac: 0,
    srcIp: 0,
    dstIp: 0,
    srcPort: 0,
    dstPort: 0,
    ttl: 64,
    tos: 0,
    df: false,
    id: 0,
    udpChecksum: false,
  };
}

/** The IPv4 header outerEncapUdp fills (one per thread: the writer does not re-enter). */
const outerHdr = { ...newIpv4Fields(), protocol: IPPROTO_UDP };

/**
 * Prepend Ethernet + IPv4 + UDP to the payload at buf[payloadOff..+payloadLen).
 * Returns the frame start (payloadOff - 42) or a negative Drop code.
 */
export function outerEncapUdp(
  buf: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  p: OuterParams,
): number {
  const off = payloadOff - OUTER_UDP_HDR_LEN;
  if (off < 0) return -Drop.NoHeadroom;
  const udpLen = payloadLen + UDP_HDR_LEN;
  if (udpLen + IPV4_HDR_LEN > IPV4_MAX_LEN) return -Drop.TooBig;
  const ipOff = off + ETH_HDR_LEN;
  const udpOff = ipOff + IPV4_HDR_LEN;
  const src = p.srcIp;
  const dst = p.dstIp;
  ethernetWrite(buf, off, p.dstMac, p.srcMac, ETHERTYPE_IPV4);
  const h = outerHdr;
  h.tos = p.tos;
  h.totalLen = udpLen + IPV4_HDR_LEN;
  h.id = p.id;
  h.flags = p.df ? IPV4_DF : 0;
  h.ttl = p.ttl;
  h.src = src;
  h.dst = dst;
  ipv4Write(buf, ipOff, h);
  udpWrite(buf, udpOff, p.srcPort, p.dstPort, udpLen);
  if (p.udpChecksum) {
    const pseudo =
      (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IPPROTO_UDP + udpLen;
    const c = ~checksumFold(checksumSum(buf, udpOff, udpLen, pseudo)) & 0xffff;
    write16(buf, udpOff + UDP_CHECKSUM, c === 0 ? 0xffff : c);
  }
  return off;
}

export interface OuterInfo {
  eth: EthernetInfo;
  ip: Ipv4Info;
  udp: UdpInfo;
  /** The UDP payload (the VXLAN header for a tunnel packet). */
  payloadOff: number;
  payloadLen: number;
}

export function newOuterInfo(): OuterInfo {
  return {
    eth: newEthernetInfo(),
    ip: newIpv4Info(),
    udp: newUdpInfo(),
    payloadOff: 0,
    payloadLen: 0,
  };
}

/** Validate Ethernet + IPv4 + UDP at buf[off..off+len) down to the UDP payload. */
export function outerDecapUdp(buf: Uint8Array, off: number, len: number, out: OuterInfo): Drop {
  const code = ethernetParse(buf, off, len, out.eth);
  if (code !== Drop.None) return code;
  if (out.eth.ethertype !== ETHERTYPE_IPV4) return Drop.UnsupportedEthertype;
  return outerDecapUdpIp(buf, out.eth.payloadOff, out.eth.payloadLen, out);
}

/**
 * The same from the IPv4 header on (raw IP captures). Fragments are dropped: RFC 7348
 * lets a receiver drop them and we do not reassemble.
 */
export function outerDecapUdpIp(buf: Uint8Array, off: number, len: number, out: OuterInfo): Drop {
  const ip = out.ip;
  let code = ipv4Parse(buf, off, len, ip);
  if (code !== Drop.None) return code;
  if (ip.mf || ip.fragOff !== 0) return Drop.Ipv4Fragment;
  if (ip.protocol !== IPPROTO_UDP) return Drop.Ipv4BadProtocol;
  code = udpParse(buf, ip.payloadOff, ip.payloadLen, out.udp);
  if (code !== Drop.None) return code;
  const udpLen = out.udp.length;
  const pseudo = ipv4PseudoHeaderSum(buf, off, IPPROTO_UDP, udpLen);
  if (!udpChecksumOk(buf, ip.payloadOff, udpLen, pseudo)) return Drop.UdpBadChecksum;
  out.payloadOff = out.udp.payloadOff;
  out.payloadLen = out.udp.payloadLen;
  return Drop.None;
}
