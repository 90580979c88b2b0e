// VXLAN (RFC 7348): an 8-byte header in front of an Ethernet frame, carried in UDP.
//
//   0: flags (I = 0x08)  1-3: reserved  4-6: VNI  7: reserved
//
// Reserved bits are written zero and ignored on receive, as the RFC says. (Linux's
// vxlan driver is stricter and drops frames with unknown flag bits; we don't.)

import { writeMac } from "./addr.js";
import { read16, write16 } from "./bytes.js";
import { Drop } from "./drop.js";
import {
  ETH_DST,
  ETH_HDR_LEN,
  ETH_SRC,
  ETH_TYPE,
  ETH_VLAN_HDR_LEN,
  ETH_VLAN_TYPE,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_VLAN,
  ethernetWrite,
} from "./ethernet.js";
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_HDR_LEN } from "./ipv4.js";
import { UDP_HDR_LEN } from "./udp.js";

const VXLAN_FLAGS = 0;
const VXLAN_VNI = 4;
export const VXLAN_HDR_LEN = 8;
const VXLAN_FLAG_I = 0x08;

/** IANA-assigned port (RFC 7348). */
export const VXLAN_PORT_IANA = 4789;
/** Linux's historical default, used by flannel. */
export const VXLAN_PORT_LINUX = 8472;

/**
 * Linux's default source-port range: the kernel uses net.ipv4.ip_local_port_range
 * (default 32768 60999) and maps the flow hash into [min, max) — max exclusive — in
 * udp_flow_src_port(). Our range is inclusive, so these are the same ports.
 */
export const VXLAN_SPORT_MIN = 32768;
export const VXLAN_SPORT_MAX = 60998;

/** Outer Ethernet + IPv4 + UDP + VXLAN: what the tunnel costs per packet. */
export const VXLAN_OVERHEAD = ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN + VXLAN_HDR_LEN;
/** Headroom in front of an IP packet from the TUN: inner Ethernet + VXLAN header. */
export const VXLAN_L3_HEADROOM = ETH_HDR_LEN + VXLAN_HDR_LEN;

export interface VxlanInfo {
  flags: number;
  vni: number;
  /** The inner Ethernet frame. */
  innerOff: number;
  innerLen: number;
}

export function newVxlanInfo(): VxlanInfo {
  return { flags: 0, vni: 0, innerOff: 0, innerLen: 0 };
}

/** Write the VXLAN header at `off`. */
export function vxlanWrite(buf: Uint8Array, off: number, vni: number): void {
  buf[off + VXLAN_FLAGS] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + VXLAN_VNI] = (vni >>> 16) & 0xff;
  buf[off + VXLAN_VNI + 1] = (vni >>> 8) & 0xff;
  buf[off + VXLAN_VNI + 2] = vni & 0xff;
  buf[off + 7] = 0;
}

/**
 * Prepend a VXLAN header to the Ethernet frame at `innerOff` (headroom reserved by the
 * caller). Returns the new start, or -Drop.NoHeadroom.
 */
export function vxlanEncapL2(buf: Uint8Array, innerOff: number, vni: number): number {
  const off = innerOff - VXLAN_HDR_LEN;
  if (off < 0) return -Drop.NoHeadroom;
  vxlanWrite(buf, off, vni);
  return off;
}

/**
 * The common step of the L3 encaps: check the IP packet at buf[ipOff..+ipLen) and the
 * headroom before it, and write the inner ethertype (from the IP version nibble) in
 * front of it. Returns where the VXLAN header goes (ipOff - 22), or a negative Drop.
 */
function l3Start(buf: Uint8Array, ipOff: number, ipLen: number): number {
  if (ipLen < 1 || ipOff + ipLen > buf.length) return -Drop.Ipv4Truncated;
  const ver = buf[ipOff] >>> 4;
  const type = ver === 4 ? ETHERTYPE_IPV4 : ver === 6 ? ETHERTYPE_IPV6 : 0;
  if (type === 0) return -Drop.Ipv4BadVersion;
  const off = ipOff - VXLAN_L3_HEADROOM;
  if (off < 0) return -Drop.NoHeadroom;
  write16(buf, ipOff - 2, type);
  return off;
}

/**
 * Prepend a synthesized inner Ethernet header (ethertype from the IP version nibble)
 * and a VXLAN header to the IP packet at `ipOff`, as the kernel does for flannel.1.
 * Returns the new start (ipOff - 22), or a negative Drop code.
 */
export function vxlanEncapL3(
  buf: Uint8Array,
  ipOff: number,
  ipLen: number,
  vni: number,
  srcMac: number,
  dstMac: number,
): number {
  const off = l3Start(buf, ipOff, ipLen);
  if (off < 0) return off;
  vxlanWrite(buf, off, vni);
  writeMac(buf, off + VXLAN_HDR_LEN + ETH_DST, dstMac);
  writeMac(buf, off + VXLAN_HDR_LEN + ETH_SRC, srcMac);
  return off;
}

/**
 * Per-peer fast path: vxlanEncapL3 with the 22 header bytes (VXLAN + inner Ethernet)
 * copied from a template made once with vxlanWriteL3Template. Passes no MAC (a 48-bit
 * double, boxed per call when a call is not inlined) and only patches the ethertype.
 */
export function vxlanEncapL3Template(
  buf: Uint8Array,
  ipOff: number,
  ipLen: number,
  tpl: Uint8Array,
  tplOff: number,
): number {
  const off = l3Start(buf, ipOff, ipLen);
  if (off < 0) return off;
  // All but the ethertype, which l3Start wrote.
  for (let i = 0; i < VXLAN_L3_HEADROOM - 2; i++) buf[off + i] = tpl[tplOff + i];
  return off;
}

/** Write the 22-byte template (VXLAN header + inner Ethernet) for vxlanEncapL3Template. */
export function vxlanWriteL3Template(
  tpl: Uint8Array,
  tplOff: number,
  vni: number,
  srcMac: number,
  dstMac: number,
): void {
  vxlanWrite(tpl, tplOff, vni);
  ethernetWrite(tpl, tplOff + VXLAN_HDR_LEN, dstMac, srcMac, ETHERTYPE_IPV4);
}

/** Validate the VXLAN header at buf[off..off+len) (the UDP payload); no copy. */
export function vxlanDecap(buf: Uint8Array, off: number, len: number, out: VxlanInfo): Drop {
  if (len < VXLAN_HDR_LEN + ETH_HDR_LEN) return Drop.VxlanTruncated;
  const flags = buf[off + VXLAN_FLAGS];
  if ((flags & VXLAN_FLAG_I) === 0) return Drop.VxlanBadFlags;
  out.flags = flags;
  const v = off + VXLAN_VNI;
  out.vni = (buf[v] << 16) | (buf[v + 1] << 8) | buf[v + 2];
  out.innerOff = off + VXLAN_HDR_LEN;
  out.innerLen = len - VXLAN_HDR_LEN;
  return Drop.None;
}

// Flow hash for the outer source port, so that ECMP/RSS in the underlay keeps one
// flow on one path and spreads flows. Like the kernel's flow dissector: L3 addresses
// + protocol + L4 ports when the packet is not a fragment (any fragment: ports are
// only in the first, and hashing them would split a flow); MACs + ethertype for
// non-IP. Each side's (address, port) is hashed apart and the two are added, so both
// directions of a flow get the same port (the kernel orders the pair for the same
// effect). The kernel's hash is seeded at random per boot, so the port values are
// not comparable with it, only the properties.

const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

function hasPorts(proto: number): boolean {
  return (
    proto === IPPROTO_TCP ||
    proto === IPPROTO_UDP ||
    proto === IPPROTO_SCTP ||
    proto === IPPROTO_UDPLITE
  );
}

/** Big-endian 32-bit word as a signed int32 (stays unboxed across calls). */
function i32(buf: Uint8Array, off: number): number {
  return (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** 32-bit flow hash of the inner frame at buf[off..off+len). */
export function vxlanFlowHash(buf: Uint8Array, off: number, len: number): number {
  return flowHash(buf, off, len) >>> 0;
}

// Returns the hash as a signed int32: unsigned values above 2^30 would be boxed when
// returned from a call that is not inlined.
function flowHash(buf: Uint8Array, off: number, len: number): number {
  if (len < ETH_HDR_LEN) return 0;
  let type = read16(buf, off + ETH_TYPE);
  let l3 = off + ETH_HDR_LEN;
  if (type === ETHERTYPE_VLAN && len >= ETH_VLAN_HDR_LEN) {
    type = read16(buf, off + ETH_VLAN_TYPE);
    l3 = off + ETH_VLAN_HDR_LEN;
  }
  const l3len = off + len - l3;
  if (type === ETHERTYPE_IPV4 && l3len >= 20 && buf[l3] >>> 4 === 4) {
    const ihl = (buf[l3] & 0x0f) * 4;
    const proto = buf[l3 + 9];
    const frag = read16(buf, l3 + 6) & 0x3fff;
    let a = mix(0x4, i32(buf, l3 + 12));
    let b = mix(0x4, i32(buf, l3 + 16));
    if (frag === 0 && ihl >= 20 && l3len >= ihl + 4 && hasPorts(proto)) {
      a = mix(a, read16(buf, l3 + ihl));
      b = mix(b, read16(buf, l3 + ihl + 2));
    }
    return fmix(mix((a + b) | 0, proto));
  }
  if (type === ETHERTYPE_IPV6 && l3len >= 40 && buf[l3] >>> 4 === 6) {
    const nh = buf[l3 + 6];
    let a = 0x6;
    let b = 0x6;
    for (let i = 0; i < 16; i += 4) {
      a = mix(a, i32(buf, l3 + 8 + i));
      b = mix(b, i32(buf, l3 + 24 + i));
    }
    // Extension headers are not walked: their flows hash on addresses only.
    if (l3len >= 44 && hasPorts(nh)) {
      a = mix(a, read16(buf, l3 + 40));
      b = mix(b, read16(buf, l3 + 42));
    }
    return fmix(mix((a + b) | 0, nh));
  }
  let a = mix(0, i32(buf, off + ETH_DST));
  a = mix(a, read16(buf, off + ETH_DST + 4));
  let b = mix(0, i32(buf, off + ETH_SRC));
  b = mix(b, read16(buf, off + ETH_SRC + 4));
  return fmix(mix((a + b) | 0, type));
}

/** Outer UDP source port for the inner frame, in [lo, hi] inclusive. */
export function vxlanSourcePort(
  buf: Uint8Array,
  innerEthOff: number,
  innerLen: number,
  lo: number,
  hi: number,
): number {
  const h = flowHash(buf, innerEthOff, innerLen) >>> 0;
  // Multiply-shift like the kernel's ((u64)hash * range) >> 32; exact in a double.
  return lo + Math.floor((h * (hi - lo + 1)) / 0x100000000);
}
