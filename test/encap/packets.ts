// Sample packets built only with our encoders, shared by the tshark test and the bench.

import { parseIpv4, parseMac } from "../../src/encap/addr.js";
import { arpWriteRequest } from "../../src/encap/arp.js";
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ethernetWrite } from "../../src/encap/ethernet.js";
import {
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REQUEST,
  ICMP_FRAG_NEEDED,
  icmpWriteEcho,
  icmpWriteError,
} from "../../src/encap/icmp.js";
import { DfPolicy, ipipEncap } from "../../src/encap/ipip.js";
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_DF,
  ipv4Write,
} from "../../src/encap/ipv4.js";
import { newOuterParams, type OuterParams, outerEncapUdp } from "../../src/encap/outer.js";
import { TCP_ACK_FLAG, TCP_PSH, tcpFillChecksum, tcpWrite } from "../../src/encap/tcp.js";
import { udpFillChecksum, udpWrite } from "../../src/encap/udp.js";
import { vxlanEncapL2, vxlanEncapL3 } from "../../src/encap/vxlan.js";

export const HEADROOM = 128;
export const POD_A = parseIpv4("10.244.1.2")!;
export const POD_B = parseIpv4("10.244.2.3")!;
export const NODE_A = parseIpv4("198.18.0.1")!;
export const NODE_B = parseIpv4("198.18.0.2")!;
export const VTEP_A = parseMac("0e:00:00:00:00:01")!;
export const VTEP_B = parseMac("0e:00:00:00:00:02")!;
export const NIC_A = parseMac("02:00:00:00:00:aa")!;
export const NIC_B = parseMac("02:00:00:00:00:bb")!;

/** A buffer with HEADROOM free bytes and an inner IPv4 packet of `proto` after it. */
export function innerIp(proto: number, payloadLen: number, id = 7): { buf: Buffer; len: number } {
  const l4 = proto === IPPROTO_TCP ? 20 : 8;
  const len = 20 + l4 + payloadLen;
  const buf = Buffer.alloc(HEADROOM + len);
  const ip = HEADROOM;
  const p = ip + 20;
  for (let i = 0; i < payloadLen; i++) buf[p + l4 + i] = (i * 7) & 0xff;
  if (proto === IPPROTO_ICMP) icmpWriteEcho(buf, p, ICMP_ECHO_REQUEST, 0x4242, 3, payloadLen);
  if (proto === IPPROTO_UDP) {
    // Ports with no Wireshark dissector, so the payload stays opaque data.
    udpWrite(buf, p, 30000, 30001, 8 + payloadLen);
    udpFillChecksum(buf, p, 8 + payloadLen, POD_A, POD_B);
  }
  if (proto === IPPROTO_TCP) {
    tcpWrite(buf, p, 43210, 80, 1000, 2000, TCP_PSH | TCP_ACK_FLAG, 512);
    tcpFillChecksum(buf, p, 20 + payloadLen, POD_A, POD_B);
  }
  ipv4Write(buf, ip, 0, len, id, IPV4_DF, 64, proto, POD_A, POD_B);
  return { buf, len };
}

export function outer(dstPort: number, srcPort: number, udpChecksum: boolean): OuterParams {
  const o = newOuterParams();
  o.srcMac = NIC_A;
  o.dstMac = NIC_B;
  o.srcIp = NODE_A;
  o.dstIp = NODE_B;
  o.srcPort = srcPort;
  o.dstPort = dstPort;
  o.df = true;
  o.udpChecksum = udpChecksum;
  return o;
}

/** Full Ethernet frame: VXLAN (L3 mode) around an inner IPv4 packet. */
export function vxlanL3Frame(
  proto: number,
  payloadLen: number,
  vni: number,
  o: OuterParams,
): Buffer {
  const { buf, len } = innerIp(proto, payloadLen);
  const off = vxlanEncapL3(buf, HEADROOM, len, vni, VTEP_A, VTEP_B);
  const start = outerEncapUdp(buf, off, len + 22, o);
  return buf.subarray(start);
}

/** Full Ethernet frame: VXLAN (L2 mode) around an ARP request. */
export function vxlanArpFrame(vni: number, o: OuterParams): Buffer {
  const buf = Buffer.alloc(HEADROOM + 42);
  ethernetWrite(buf, HEADROOM, 0xffffffffffff, VTEP_A, ETHERTYPE_ARP);
  arpWriteRequest(buf, HEADROOM + 14, VTEP_A, POD_A, POD_B);
  const off = vxlanEncapL2(buf, HEADROOM, vni);
  const start = outerEncapUdp(buf, off, 42 + 8, o);
  return buf.subarray(start);
}

/** Full Ethernet frame: IPIP around an inner IPv4 packet. */
export function ipipFrame(proto: number, payloadLen: number, ttl: number, df: DfPolicy): Buffer {
  const { buf, len } = innerIp(proto, payloadLen);
  const off = ipipEncap(buf, HEADROOM, len, NODE_A, NODE_B, ttl, 0, df, 99);
  ethernetWrite(buf, off - 14, NIC_B, NIC_A, ETHERTYPE_IPV4);
  return buf.subarray(off - 14);
}

/** Ethernet frame carrying our frag-needed answer to a 1400-byte inner UDP packet. */
export function fragNeededFrame(mtu: number): Buffer {
  const { buf, len } = innerIp(IPPROTO_UDP, 1400 - 28);
  const out = Buffer.alloc(14 + 100);
  const n = icmpWriteError(
    out,
    14,
    buf,
    HEADROOM,
    len,
    ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED,
    mtu,
    parseIpv4("10.244.1.1")!,
    64,
    0,
  );
  ethernetWrite(out, 0, VTEP_A, VTEP_B, ETHERTYPE_IPV4);
  return out.subarray(0, 14 + n);
}

export { DfPolicy };
