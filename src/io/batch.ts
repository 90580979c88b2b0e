// A Batch describes up to `capacity` packets living in a Slab, as parallel typed arrays:
// no object per packet. Readers fill it in C++; the dataplane edits off/len in place
// (encapsulation: off -= hdr; len += hdr) and hands it to writeBatch/sendBatch.
import type { Slab } from "./slab.js";

export class Batch {
  readonly capacity: number;
  /** Slot number holding packet i (to free it afterwards). */
  readonly slot: Uint32Array;
  /** Absolute byte offset of packet i's first byte inside the slab. */
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  /** Socket I/O: peer IPv4 address (uint32, host order) of packet i. */
  readonly addr: Uint32Array;
  /** Socket I/O: peer UDP port of packet i (0 for raw sockets). */
  readonly port: Uint16Array;
  /** Packets [0, count) are valid. */
  count = 0;
  /** Optional gather lists (withGather): packet i made of several slab ranges. */
  gather: Gather | undefined;

  constructor(capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) {
      throw new RangeError(`batch capacity must be an integer in 1..1024, got ${capacity}`);
    }
    this.capacity = capacity;
    // One off-heap buffer for all arrays: the addon caches their data pointers.
    const buf = new ArrayBuffer(capacity * 18);
    let at = 0;
    const u32 = () => {
      const a = new Uint32Array(buf, at, capacity);
      at += capacity * 4;
      return a;
    };
    this.slot = u32();
    this.off = u32();
    this.len = u32();
    this.addr = u32();
    this.port = new Uint16Array(buf, at, capacity);
  }

  /** Append a packet; false when full. */
  push(slot: number, off: number, len: number, addr = 0, port = 0): boolean {
    const i = this.count;
    if (i >= this.capacity) return false;
    this.slot[i] = slot;
    this.off[i] = off;
    this.len[i] = len;
    this.addr[i] = addr;
    this.port[i] = port;
    this.count = i + 1;
    if (this.gather !== undefined) this.gather.count[i] = 0;
    return true;
  }

  /** Give the batch gather lists of up to `ranges` slab ranges in all. */
  withGather(ranges: number): this {
    this.gather = new Gather(this.capacity, ranges);
    return this;
  }

  /**
   * Append a packet made of ranges added next with addRange() (its `len` becomes their
   * sum; `off` is unused). False when the batch or its gather lists are full.
   */
  pushGather(slot: number, addr = 0, port = 0, ranges = 1): boolean {
    const g = this.gather;
    if (g === undefined || g.used + ranges > g.capacity) return false;
    if (!this.push(slot, 0, 0, addr, port)) return false;
    const i = this.count - 1;
    g.start[i] = g.used;
    return true;
  }

  /** Add slab[off, off+len) to the last pushGather() packet; false when out of room. */
  addRange(off: number, len: number): boolean {
    const g = this.gather!;
    const k = g.used;
    if (k >= g.capacity) return false;
    const i = this.count - 1;
    g.off[k] = off;
    g.len[k] = len;
    g.used = k + 1;
    g.count[i]++;
    this.len[i] += len;
    return true;
  }

  /** Return every slot of packets [from, from+count) to the slab. */
  freeSlots(slab: Slab, from = 0, count = this.count - from): void {
    for (let i = from; i < from + count; i++) slab.free(this.slot[i]);
  }

  clear(): void {
    this.count = 0;
    if (this.gather !== undefined) this.gather.used = 0;
  }
}

/**
 * Gather lists of a Batch, off-heap like it (the addon caches the pointers, see
 * Io::SetGather): packet i with count[i] > 0 is the concatenation of ranges
 * [off[k], off[k] + len[k]) for k in start[i] .. start[i] + count[i]. This is what
 * lets a TSO segment go out as its own headers plus its payload where it already is,
 * and a coalesced super-packet reach the TUN as its segments' payloads in place.
 */
export class Gather {
  readonly start: Uint32Array;
  readonly count: Uint16Array;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  /** Ranges in use. */
  used = 0;
  constructor(
    entries: number,
    readonly capacity: number,
  ) {
    this.start = new Uint32Array(new ArrayBuffer(entries * 4));
    this.count = new Uint16Array(new ArrayBuffer(entries * 2));
    const buf = new ArrayBuffer(capacity * 8);
    this.off = new Uint32Array(buf, 0, capacity);
    this.len = new Uint32Array(buf, capacity * 4, capacity);
  }
}
