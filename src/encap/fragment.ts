// IPv4 fragmentation (RFC 791 §3.2, RFC 815's sizes): cut one packet into fragments
// that each fit `mtu`, every fragment's payload a multiple of 8 bytes but the last.
// Used by the dataplane for the DF-clear case: fragment the inner packet before
// encapsulation (what the kernel does in front of a tunnel device) or the outer packet
// after it (what RFC 7348 tells VTEPs not to do — offered for experiments).
//
// Options: only those with the copy flag belong in later fragments (RFC 791); rather
// than rewrite them, later fragments are given a bare 20-byte header and the options
// ride in the first one only, which every receiver accepts.
import { read16, write16 } from "./bytes.js";
import {
  IPV4_FLAGS_FRAG,
  IPV4_FRAG_MASK,
  IPV4_HDR_LEN,
  IPV4_MF,
  IPV4_TOTAL_LEN,
  IPV4_VER_IHL,
  ipv4FillChecksum,
} from "./ipv4.js";

/** Largest payload per fragment for a header of hdrLen in mtu bytes (multiple of 8). */
export function fragmentPayloadSize(mtu: number, hdrLen: number): number {
  return ((mtu - hdrLen) >> 3) << 3;
}

/**
 * How many fragments the validated IPv4 packet at buf[off..off+totalLen) needs for
 * `mtu`; 1 when it already fits, 0 when the mtu cannot carry even 8 bytes of payload.
 */
export function ipv4FragmentCount(
  buf: Uint8Array,
  off: number,
  totalLen: number,
  mtu: number,
): number {
  if (totalLen <= mtu) return 1;
  const hdrLen = (buf[off + IPV4_VER_IHL] & 0x0f) * 4;
  const first = fragmentPayloadSize(mtu, hdrLen);
  const rest = fragmentPayloadSize(mtu, IPV4_HDR_LEN);
  if (first <= 0 || rest <= 0) return 0;
  const payload = totalLen - hdrLen;
  if (payload <= first) return 1;
  return 1 + Math.ceil((payload - first) / rest);
}

/**
 * Write fragment `k` (0-based) of the packet at src[srcOff..+totalLen) to
 * dst[dstOff..); returns its length. The caller checked ipv4FragmentCount() > k and
 * gave dst room for `mtu` bytes; dst must not overlap the source's bytes it reads.
 * Fragments of a packet that was itself a fragment keep its offset and MF bit.
 */
export function ipv4WriteFragment(
  src: Uint8Array,
  srcOff: number,
  totalLen: number,
  mtu: number,
  k: number,
  dst: Uint8Array,
  dstOff: number,
): number {
  const hdrLen = (src[srcOff + IPV4_VER_IHL] & 0x0f) * 4;
  const payload = totalLen - hdrLen;
  const first = fragmentPayloadSize(mtu, hdrLen);
  const rest = fragmentPayloadSize(mtu, IPV4_HDR_LEN);
  const start = k === 0 ? 0 : first + (k - 1) * rest;
  const size = Math.min(k === 0 ? first : rest, payload - start);
  const outHdr = k === 0 ? hdrLen : IPV4_HDR_LEN;
  // Header: the first fragment keeps options; the others get the fixed 20 bytes.
  for (let i = 0; i < IPV4_HDR_LEN; i++) dst[dstOff + i] = src[srcOff + i];
  if (k === 0) for (let i = IPV4_HDR_LEN; i < hdrLen; i++) dst[dstOff + i] = src[srcOff + i];
  else dst[dstOff + IPV4_VER_IHL] = 0x45;
  const dataFrom = srcOff + hdrLen + start;
  for (let i = 0; i < size; i++) dst[dstOff + outHdr + i] = src[dataFrom + i];
  const orig = read16(src, srcOff + IPV4_FLAGS_FRAG);
  const last = start + size === payload;
  const mf = !last || (orig & IPV4_MF) !== 0 ? IPV4_MF : 0;
  const fragOff = (orig & IPV4_FRAG_MASK) + (start >> 3);
  write16(dst, dstOff + IPV4_FLAGS_FRAG, (orig & ~(IPV4_MF | IPV4_FRAG_MASK)) | mf | fragOff);
  write16(dst, dstOff + IPV4_TOTAL_LEN, outHdr + size);
  ipv4FillChecksum(dst, dstOff);
  return outHdr + size;
}
