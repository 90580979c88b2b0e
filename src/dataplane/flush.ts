// The one way a batch leaves: whatever sent it (sendmmsg on the raw socket, UDP_SEGMENT
// on a pool socket, gathered segments on the raw socket, writes to the TUN/TAP), what
// was sent is counted the same way and the rest counted as failed.
import type { Batch } from "../io/batch.js";

/** Which counters one output moves; -1: not counted. */
export class FlushCounters {
  constructor(
    readonly counters: Float64Array,
    readonly batches: number,
    /** Messages handed over (a UDP_SEGMENT message is one, whatever it carries). */
    readonly messages: number,
    /** Packets on the wire: a message with a segment size counts each datagram. */
    readonly packets: number,
    readonly bytes: number,
    /** Where the packets not sent are counted: counters or drops, at `failedAt`. */
    readonly failed: Float64Array,
    readonly failedAt: number,
    /** Bytes in front of each packet that are not counted (a virtio_net_hdr). */
    readonly skip: number,
  ) {}
}

/**
 * Count a send of b[0, sent) (`gso`: each message's segment size, or undefined) and
 * clear the batch.
 */
export function countFlush(
  b: Batch,
  gso: Uint16Array | undefined,
  sent: number,
  k: FlushCounters,
): void {
  const c = k.counters;
  if (k.batches >= 0) c[k.batches]++;
  if (k.messages >= 0) c[k.messages] += sent;
  for (let i = 0; i < sent; i++) {
    const len = b.len[i];
    const g = gso === undefined ? 0 : gso[i];
    c[k.bytes] += len - k.skip;
    c[k.packets] += g > 0 ? Math.ceil(len / g) : 1;
  }
  if (sent < b.count) k.failed[k.failedAt] += b.count - sent;
  b.clear();
}
