// One ArrayBuffer, shared with the addon, cut into `count` fixed slots. A packet is read
// into its slot at `headroom` so encapsulation can write outer headers in front of it
// without copying (off -= hdr; len += hdr). Free slots live on a stack (Uint32Array)
// that the addon pops directly while reading, so neither side allocates per packet.

export interface SlabOptions {
  /** Number of slots (default 4096). */
  count?: number;
  /** Bytes per slot, headroom included (default 2048). */
  slotSize?: number;
  /** Bytes reserved in front of each packet for outer headers (default 128, min 64). */
  headroom?: number;
}

/** Indices into Slab.meta, shared with src/io/native/io.h. */
const META_FREE = 0;
const META_EXHAUSTED = 1;
const META_STARVED = 2;

/** Something that stopped reading for lack of slots and wants to hear when some return. */
export interface SlabWaiter {
  wake(): void;
}

export class Slab {
  readonly count: number;
  readonly slotSize: number;
  readonly headroom: number;
  /** The memory itself, handed once to every reader/socket created on this slab. */
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** Free-slot stack: stack[0 .. meta[META_FREE]) are free slot numbers. */
  readonly stack: Uint32Array;
  /** [free count, exhaustion events, starved flag], read and written by the addon. */
  readonly meta: Uint32Array;
  private readonly waiters: SlabWaiter[] = [];

  constructor(opts: SlabOptions = {}) {
    const count = opts.count ?? 4096;
    const slotSize = opts.slotSize ?? 2048;
    const headroom = opts.headroom ?? 128;
    if (!Number.isInteger(count) || count < 1 || count > 1 << 24) {
      throw new RangeError(`slab count must be an integer in 1..${1 << 24}, got ${count}`);
    }
    if (!Number.isInteger(headroom) || headroom < 64) {
      throw new RangeError(`slab headroom must be an integer >= 64, got ${headroom}`);
    }
    if (!Number.isInteger(slotSize) || slotSize <= headroom || slotSize > 1 << 20) {
      throw new RangeError(`slab slotSize must exceed headroom (${headroom}) and be <= 1 MiB`);
    }
    if (count * slotSize > 0xffffffff) {
      throw new RangeError("slab larger than 4 GiB: offsets are 32-bit");
    }
    this.count = count;
    this.slotSize = slotSize;
    this.headroom = headroom;
    this.buffer = new ArrayBuffer(count * slotSize);
    this.u8 = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
    // Own ArrayBuffers (not views of a small on-heap array) so the addon can keep
    // their data pointers for the slab's lifetime.
    this.stack = new Uint32Array(new ArrayBuffer(count * 4));
    this.meta = new Uint32Array(new ArrayBuffer(16));
    // Lowest slots on top, so a lightly loaded slab touches few pages.
    for (let i = 0; i < count; i++) this.stack[i] = count - 1 - i;
    this.meta[META_FREE] = count;
  }

  /** Free slots right now. */
  get available(): number {
    return this.meta[META_FREE];
  }

  /** Times a reader or alloc() found no free slot (counter `pool_exhausted`). */
  get poolExhausted(): number {
    return this.meta[META_EXHAUSTED];
  }

  /** A free slot number, or -1 (counted) when none is free. */
  alloc(): number {
    const top = this.meta[META_FREE];
    if (top === 0) {
      this.meta[META_EXHAUSTED]++;
      return -1;
    }
    this.meta[META_FREE] = top - 1;
    return this.stack[top - 1];
  }

  /** Give a slot back; wakes readers that stopped for lack of slots. */
  free(slot: number): void {
    const top = this.meta[META_FREE];
    if (top >= this.count || slot >>> 0 !== slot || slot >= this.count) {
      throw new Error(`slab free(${slot}): not a slot or double free (free=${top})`);
    }
    this.stack[top] = slot;
    this.meta[META_FREE] = top + 1;
    if (this.meta[META_STARVED] !== 0) this.wakeWaiters();
  }

  /** Byte offset of a slot's first byte. */
  slotStart(slot: number): number {
    return slot * this.slotSize;
  }

  /** Byte offset where a packet read into `slot` starts (slot start + headroom). */
  dataOffset(slot: number): number {
    return slot * this.slotSize + this.headroom;
  }

  /** Slot that holds absolute byte offset `off`. */
  slotOf(off: number): number {
    return Math.floor(off / this.slotSize);
  }

  addWaiter(w: SlabWaiter): void {
    if (!this.waiters.includes(w)) this.waiters.push(w);
  }

  removeWaiter(w: SlabWaiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private wakeWaiters(): void {
    this.meta[META_STARVED] = 0;
    for (let i = 0; i < this.waiters.length; i++) this.waiters[i].wake();
  }
}
