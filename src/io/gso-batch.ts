// A Batch with two more per-message columns for UDP segmentation offload sends:
// `gso` (UDP_SEGMENT size: the message is cut into datagrams of this many bytes, the
// last one shorter; 0 = one datagram) and `tosTtl` (outer IP_TOS << 8 | IP_TTL as a
// cmsg; 0 = the socket's defaults). Off-heap like the others.
import { Batch } from "./batch.js";

/** Largest UDP payload in one sendmsg: 65535 - 20 (IPv4) - 8 (UDP). */
export const UDP_MAX_PAYLOAD = 65507;
/** The kernel's UDP_MAX_SEGMENTS: more segments in one GSO send fail with EINVAL. */
export const UDP_MAX_SEGMENTS = 64;

/** IPv4 + TCP with timestamps: the headers of a typical segment. */
const TCP_IPV4_TS_HEADERS = 52;

/**
 * The gso_max_size for a pod's interface that makes its TCP super-packets leave the
 * dataplane as one UDP_SEGMENT send: each segment, cut at the tunnel MTU, gains
 * `prefix` bytes in the datagram (VXLAN 8 + inner Ethernet 14), and one send holds at
 * most UDP_MAX_PAYLOAD bytes in UDP_MAX_SEGMENTS segments. At MTU 1450 a full 64 KiB
 * super-packet is 45 segments and leaves as two sends (44 + 1); 44 segments are one.
 * Counted for IPv4 TCP with timestamps; TCP keeps its super-packets below the limit by
 * its own header reserve, so a send never needs a second message in that case (with
 * smaller segments it may: correct, only slower).
 */
export function oneSendGsoMaxSize(tunnelMtu: number, prefix = 22): number {
  const perSend = Math.min(UDP_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / (tunnelMtu + prefix)));
  return perSend * (tunnelMtu - TCP_IPV4_TS_HEADERS) + TCP_IPV4_TS_HEADERS;
}

/**
 * The gso_max_size the CNI gives a pod's end of its veth in `mode`, or undefined to
 * leave the kernel's: only the VXLAN modes send with UDP_SEGMENT (ipip's raw socket
 * sends a batch of packets, where bigger super-packets only mean fewer reads).
 */
export function podGsoMaxSize(mode: string, tunnelMtu: number): number | undefined {
  return mode === "ipip" ? undefined : oneSendGsoMaxSize(tunnelMtu);
}

export class GsoBatch extends Batch {
  readonly gso: Uint16Array;
  readonly tosTtl: Uint16Array;

  constructor(capacity = 64) {
    super(capacity);
    const buf = new ArrayBuffer(capacity * 4);
    this.gso = new Uint16Array(buf, 0, capacity);
    this.tosTtl = new Uint16Array(buf, capacity * 2, capacity);
  }

  /** Append a message; false when full. */
  pushGso(
    slot: number,
    off: number,
    len: number,
    addr: number,
    port: number,
    gso: number,
    tosTtl: number,
  ): boolean {
    const i = this.count;
    if (!this.push(slot, off, len, addr, port)) return false;
    this.gso[i] = gso;
    this.tosTtl[i] = tosTtl;
    return true;
  }

  /** Like pushGso for a message of `ranges` gathered ranges (add them with addRange). */
  pushGsoGather(
    slot: number,
    addr: number,
    port: number,
    gso: number,
    tosTtl: number,
    ranges: number,
  ): boolean {
    const i = this.count;
    if (!this.pushGather(slot, addr, port, ranges)) return false;
    this.gso[i] = gso;
    this.tosTtl[i] = tosTtl;
    return true;
  }
}
