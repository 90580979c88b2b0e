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
    return true;
  }

  /** Return every slot of packets [from, from+count) to the slab. */
  freeSlots(slab: Slab, from = 0, count = this.count - from): void {
    for (let i = from; i < from + count; i++) slab.free(this.slot[i]);
  }

  clear(): void {
    this.count = 0;
  }
}
