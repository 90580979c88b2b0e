// A Batch with two more per-message columns for UDP segmentation offload sends:
// `gso` (UDP_SEGMENT size: the message is cut into datagrams of this many bytes, the
// last one shorter; 0 = one datagram) and `tosTtl` (outer IP_TOS << 8 | IP_TTL as a
// cmsg; 0 = the socket's defaults). Off-heap like the others.
import { Batch } from "./batch.js";

/** Largest UDP payload in one sendmsg: 65535 - 20 (IPv4) - 8 (UDP). */
export const UDP_MAX_PAYLOAD = 65507;
/** The kernel's UDP_MAX_SEGMENTS: more segments in one GSO send fail with EINVAL. */
export const UDP_MAX_SEGMENTS = 64;

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
