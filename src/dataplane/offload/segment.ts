// TCP and UDP segmentation of TUN TSO/USO super-packets (the software half of the
// offload); the virtio_net_hdr that carries gso_size is the TUN's own (src/tun/vnet.ts).
//
// A super-packet is one IPv4 (TSO4) or IPv6 (TSO6, a bridged frame in vxlan-l2) header
// + one TCP (or UDP) header + up to 64 KB of payload, with gso_size (the MSS) in its
// virtio_net_hdr. superSegment() writes one header block per
// segment (`prefix` bytes of tunnel header copied from the first block + its own
// IPv4/TCP headers) and leaves the payload where the TUN read put it: the sender sends
// block k followed by payload chunk k (a gather list), and a run of segments is one
// UDP_SEGMENT send whose gso_size is the first segment's size. No payload byte is
// copied in user space. Per segment: IPv4 total length, id (+k, as Linux's TSO does),
// header checksum; TCP sequence number, flags (CWR only on the first, FIN/PSH only on
// the last), checksum. IPv6 has no id or header checksum: per segment only its payload
// length changes, and the L4 checksum covers the IPv6 pseudo-header.
//
// TS/C++ split: headers are written here; the per-byte work is the checksum sum over
// each segment's header and payload, which the addon does (`Summer`,
// src/io/native/csum.cc). Tests use the TypeScript Summer below.
import { read16, read32, write16, write32 } from "../../encap/bytes.js";
import { checksumFold, checksumSum } from "../../encap/checksum.js";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_CHECKSUM,
  IPV4_FLAGS_FRAG,
  IPV4_HDR_LEN,
  IPV4_ID,
  IPV4_PROTOCOL,
  IPV4_TOTAL_LEN,
  ipv4PseudoHeaderSum,
} from "../../encap/ipv4.js";
import {
  IPV6_HDR_LEN,
  IPV6_PAYLOAD_LEN,
  ipv6PseudoHeaderSum,
  ipv6UpperOffset,
} from "../../encap/ipv6.js";
import { TCP_CHECKSUM, TCP_DATA_OFF, TCP_FLAGS, TCP_SEQ } from "../../encap/tcp.js";
import { UDP_CHECKSUM, UDP_HDR_LEN, UDP_LENGTH } from "../../encap/udp.js";

const TCP_CWR = 0x80;
const TCP_FIN_PSH = 0x09;

/** Ranges one sumMany() call takes. */
export const SUM_MANY = 128;

/** Sums bytes of one buffer: the addon's Csum over the slab, or TsSummer. */
export interface Summer {
  /** Folded (not complemented) one's-complement sum of [off, off+len). */
  sum(off: number, len: number): number;
  /** Ranges for sumMany (SUM_MANY long) and their sums. */
  readonly offs: Uint32Array;
  readonly lens: Uint32Array;
  readonly out: Uint32Array;
  /** out[i] = sum(offs[i], lens[i]) for i < count: one call for a batch of segments. */
  sumMany(count: number): void;
}

/** The TypeScript checksum loop, for tests and as the reference for the addon's. */
export class TsSummer implements Summer {
  readonly offs = new Uint32Array(SUM_MANY);
  readonly lens = new Uint32Array(SUM_MANY);
  readonly out = new Uint32Array(SUM_MANY);
  constructor(private readonly u8: Uint8Array) {}
  sum(off: number, len: number): number {
    return checksumFold(checksumSum(this.u8, off, len));
  }
  sumMany(count: number): void {
    for (let i = 0; i < count; i++) this.out[i] = this.sum(this.offs[i], this.lens[i]);
  }
}

/**
 * NEEDS_CSUM on a packet that is not a super-packet: the field at start+offset holds
 * the pseudo-header sum; finish it over [start, len). False when the header points
 * outside the packet.
 */
export function completeChecksum(
  u8: Uint8Array,
  pkt: number,
  len: number,
  start: number,
  offset: number,
  summer: Summer,
): boolean {
  if (start + offset + 2 > len) return false;
  const s = summer.sum(pkt + start, len - start);
  write16(u8, pkt + start + offset, ~s & 0xffff);
  return true;
}

/**
 * IP + L4 header length of the super-packet at `off` carrying `proto` (TCP or UDP), or
 * 0 when it is not one: IPv4 (unfragmented), or IPv6 with any hop-by-hop and
 * destination options headers between them (ipv6UpperOffset; every segment gets a
 * copy, as Linux's GSO gives them).
 */
function superHeaderLen(u8: Uint8Array, off: number, len: number, proto: number): number {
  if (len < IPV4_HDR_LEN + UDP_HDR_LEN) return 0;
  const version = u8[off] >>> 4;
  let net: number;
  if (version === 6) {
    if (len < IPV6_HDR_LEN + UDP_HDR_LEN) return 0;
    if (read16(u8, off + IPV6_PAYLOAD_LEN) + IPV6_HDR_LEN > len) return 0;
    net = ipv6UpperOffset(u8, off, len, proto);
    if (net === 0) return 0;
  } else if (version === 4) {
    net = (u8[off] & 0x0f) * 4;
    if (net < IPV4_HDR_LEN || u8[off + IPV4_PROTOCOL] !== proto) return 0;
    if ((read16(u8, off + IPV4_FLAGS_FRAG) & 0x3fff) !== 0) return 0;
  } else {
    return 0;
  }
  if (proto === IPPROTO_UDP) return net + UDP_HDR_LEN > len ? 0 : net + UDP_HDR_LEN;
  if (net + 20 > len) return 0;
  const thl = (u8[off + net + TCP_DATA_OFF] >>> 4) * 4;
  return thl < 20 || net + thl > len ? 0 : net + thl;
}

/** IP + TCP header length of the TCP super-packet (TSO) at `off`, or 0. */
export function tsoHeaderLen(u8: Uint8Array, off: number, len: number): number {
  return superHeaderLen(u8, off, len, IPPROTO_TCP);
}

/** Segments superSegment() will write. */
export function tsoSegmentCount(payloadLen: number, mss: number): number {
  return payloadLen <= 0 ? 0 : Math.ceil(payloadLen / mss);
}

/** IP + UDP header length of the UDP super-packet (USO) at `off`, or 0. */
export function usoHeaderLen(u8: Uint8Array, off: number, len: number): number {
  return superHeaderLen(u8, off, len, IPPROTO_UDP);
}

/**
 * Cut the super-packet [inOff, inOff+inLen) (headers of `hdrLen` bytes, see
 * tsoHeaderLen / usoHeaderLen) into segments of at most `size` payload bytes without
 * moving the payload: segment k's headers (`prefix` bytes of tunnel header copied from
 * block 0, which the caller wrote, then its own IP and L4 headers) are written at
 * hdrOut + (k - first) * (prefix + hdrLen), and its payload stays where it is, at
 * tsoPayloadOff(inOff, hdrLen, size, k) (tsoPayloadLen bytes). The sender glues each
 * block to its payload with a gather list. `first`, `most`: only segments first ..
 * first+most-1, for a caller whose header space is limited. The header blocks must not
 * overlap the super-packet. Returns the segment count (0: nothing to do).
 *
 * TCP (TSO): `size` is the MSS. Per segment: IPv4 total length, id (+k, as Linux's TSO
 * does), header checksum (IPv6: its payload length); TCP sequence number, flags (CWR
 * only on the first, FIN/PSH only on the last) and checksum. UDP (USO: an application
 * sent with UDP_SEGMENT and the TUN took the whole run): every segment is one of the
 * sender's datagrams (`size` = its gso_size, the last one shorter), so it may not be
 * re-cut: the caller handles a path MTU that is too small. Per segment: the IP fields
 * as for TCP; UDP length and checksum (0 sent as 0xffff). Checksums are summed for up
 * to SUM_MANY / 2 segments per addon call.
 */
export function superSegment(
  u8: Uint8Array,
  udp: boolean,
  inOff: number,
  inLen: number,
  hdrLen: number,
  size: number,
  hdrOut: number,
  prefix: number,
  summer: Summer,
  first = 0,
  most = 0xffff,
): number {
  const v6 = u8[inOff] >>> 4 === 6;
  const total = v6
    ? IPV6_HDR_LEN + read16(u8, inOff + IPV6_PAYLOAD_LEN)
    : read16(u8, inOff + IPV4_TOTAL_LEN);
  const end = Math.min(total, inLen);
  const payload = end - hdrLen;
  if (payload <= 0 || size <= 0) return 0;
  const stop = Math.min(payload, (first + most) * size);
  // The network header: IPv6's with its options headers (the caller's hdrLen has them).
  const ihl = v6
    ? ipv6UpperOffset(u8, inOff, inLen, udp ? IPPROTO_UDP : IPPROTO_TCP)
    : (u8[inOff] & 0x0f) * 4;
  if (ihl === 0) return 0;
  const l4h = hdrLen - ihl;
  const hs = prefix + hdrLen;
  const pay0 = inOff + hdrLen;
  const id0 = v6 ? 0 : read16(u8, inOff + IPV4_ID);
  const seq0 = udp ? 0 : read32(u8, inOff + ihl + TCP_SEQ) | 0;
  const flags0 = udp ? 0 : u8[inOff + ihl + TCP_FLAGS];
  const proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
  const csum = udp ? UDP_CHECKSUM : TCP_CHECKSUM;
  // IPv4: the header's sum without the three fields each segment changes (total
  // length, id, checksum), so that a segment's header checksum is two additions.
  const ipBase = v6
    ? 0
    : checksumSum(u8, inOff, ihl) -
      read16(u8, inOff + IPV4_TOTAL_LEN) -
      read16(u8, inOff + IPV4_ID) -
      read16(u8, inOff + IPV4_CHECKSUM);
  // The L4 pseudo-header's addresses and protocol, the same in every segment (its
  // length, under 64 KiB, is added per segment).
  const pseudoBase = v6
    ? ipv6PseudoHeaderSum(u8, inOff, proto, 0)
    : ipv4PseudoHeaderSum(u8, inOff, proto, 0);
  const offs = summer.offs;
  const lens = summer.lens;
  const sums = summer.out;
  let k = first;
  let p = first * size;
  while (p < stop) {
    // Pass 1: up to SUM_MANY / 2 header blocks and the two ranges each checksum covers
    // (the block's L4 header, the payload in place); pass 2: the checksums from one
    // sumMany() call.
    let m = 0;
    for (; p < stop && m < SUM_MANY; m += 2, k++) {
      const chunk = Math.min(payload - p, size);
      const at = hdrOut + (k - first) * hs;
      const ip = at + prefix;
      // The first block's headers come from the super-packet; later blocks copy the
      // first whole (one copy, not two: every field that differs is rewritten below).
      if (k > first) u8.copyWithin(at, hdrOut, hdrOut + prefix + hdrLen);
      else u8.copyWithin(ip, inOff, inOff + hdrLen);
      if (v6) {
        write16(u8, ip + IPV6_PAYLOAD_LEN, hdrLen - IPV6_HDR_LEN + chunk);
      } else {
        const id = (id0 + k) & 0xffff;
        write16(u8, ip + IPV4_TOTAL_LEN, hdrLen + chunk);
        write16(u8, ip + IPV4_ID, id);
        write16(u8, ip + IPV4_CHECKSUM, ~checksumFold(ipBase + hdrLen + chunk + id) & 0xffff);
      }
      const l4 = ip + ihl;
      if (udp) {
        write16(u8, l4 + UDP_LENGTH, UDP_HDR_LEN + chunk);
      } else {
        write32(u8, l4 + TCP_SEQ, (seq0 + p) | 0);
        let f = flags0;
        if (k > 0) f &= ~TCP_CWR;
        if (p + chunk < payload) f &= ~TCP_FIN_PSH;
        u8[l4 + TCP_FLAGS] = f;
      }
      u8[l4 + csum] = 0;
      u8[l4 + csum + 1] = 0;
      offs[m] = l4;
      lens[m] = l4h;
      offs[m + 1] = pay0 + p;
      lens[m + 1] = chunk;
      p += chunk;
    }
    summer.sumMany(m);
    for (let j = 0; j < m; j += 2) {
      const l4 = offs[j];
      const len = l4h + lens[j + 1];
      const sum = sums[j] + sums[j + 1] + pseudoBase + len;
      const c = ~checksumFold(sum) & 0xffff;
      // UDP: a computed 0 goes out as 0xffff (0 means "no checksum", RFC 768).
      write16(u8, l4 + csum, udp && c === 0 ? 0xffff : c);
    }
  }
  return k - first;
}

/** Where segment k's payload starts inside its super-packet (see superSegment). */
export function tsoPayloadOff(inOff: number, hdrLen: number, mss: number, k: number): number {
  return inOff + hdrLen + k * mss;
}

/** Payload bytes of segment k of a super-packet carrying `payload` bytes. */
export function tsoPayloadLen(payload: number, mss: number, k: number): number {
  return Math.min(mss, payload - k * mss);
}

/**
 * True when the TCP checksum (pseudo-header included) of the IPv4 or IPv6 packet at `ip`
 * holds.
 * `pre`: the sum of the TCP header + payload when already known (sumMany), else -1.
 */
export function tcpChecksumOk(u8: Uint8Array, ip: number, summer: Summer, pre = -1): boolean {
  if (u8[ip] >>> 4 === 6) {
    // IPv6 (no extension headers: the caller checked the next header is TCP).
    const l4 = read16(u8, ip + IPV6_PAYLOAD_LEN);
    if (l4 < 20) return false;
    const body = pre >= 0 ? pre : summer.sum(ip + IPV6_HDR_LEN, l4);
    return checksumFold(body + ipv6PseudoHeaderSum(u8, ip, IPPROTO_TCP, l4)) === 0xffff;
  }
  const ihl = (u8[ip] & 0x0f) * 4;
  const total = read16(u8, ip + IPV4_TOTAL_LEN);
  const l4 = total - ihl;
  if (l4 < 20) return false;
  const body = pre >= 0 ? pre : summer.sum(ip + ihl, l4);
  const s = body + ipv4PseudoHeaderSum(u8, ip, IPPROTO_TCP, l4);
  return checksumFold(s) === 0xffff;
}
