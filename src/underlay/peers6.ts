// The IPv6 underlay's addresses as numbers. The dataplane names an underlay peer with
// one uint32 everywhere (FDB remotes, routes, Batch.addr, the forwarder's curRemote):
// with an IPv4 underlay that number is the address itself; with an IPv6 underlay it is
// an index into this table, which the addon reads (16 bytes per entry) to build each
// message's sockaddr_in6. Entry 0 is never used, so 0 keeps meaning "no peer".
//
// A received datagram's source comes from the addon as 16 bytes; resolveBatch() turns
// each into its index (interning new ones, as learning needs them) in one pass over the
// batch, before the forwarder sees it: open addressing over typed arrays, nothing
// allocated per packet. The table only grows (as the kernel's FDB remotes, it holds
// what was programmed or heard from); when full, new sources resolve to 0 (dropped).
import { formatIpv6, parseIpv6 } from "../encap/addr6.js";
import type { Batch } from "../io/batch.js";

const IPV6_LEN = 16;

export class PeerTable6 {
  /** Entry i at [16 i, 16 i + 16), network byte order; handed to the addon. */
  readonly bytes: Uint8Array;
  /** Hash slots: entry index, 0 = empty. Power-of-two size, at most half full. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private used = 1;

  constructor(readonly capacity = 4096) {
    this.bytes = new Uint8Array(new ArrayBuffer(capacity * IPV6_LEN));
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.slots = new Int32Array(new ArrayBuffer(size * 4));
    this.mask = size - 1;
  }

  /** Entries in use (entry 0 included). */
  get size(): number {
    return this.used;
  }

  /** The index of the address at src[off, off+16), added when new; 0 when full. */
  intern(src: Uint8Array, off: number): number {
    let h = 0x811c9dc5;
    for (let k = 0; k < IPV6_LEN; k++) h = Math.imul(h ^ src[off + k], 0x01000193);
    const bytes = this.bytes;
    for (let at = h & this.mask; ; at = (at + 1) & this.mask) {
      const idx = this.slots[at];
      if (idx === 0) {
        if (this.used >= this.capacity) return 0;
        const n = this.used++;
        bytes.set(src.subarray(off, off + IPV6_LEN), n * IPV6_LEN);
        this.slots[at] = n;
        return n;
      }
      let k = 0;
      const base = idx * IPV6_LEN;
      while (k < IPV6_LEN && bytes[base + k] === src[off + k]) k++;
      if (k === IPV6_LEN) return idx;
    }
  }

  /** Batch.addr[i] = the index of datagram i's source, which the addon left in rx[16 i]. */
  resolveBatch(b: Batch, rx: Uint8Array): void {
    const n = b.count;
    for (let i = 0; i < n; i++) b.addr[i] = this.intern(rx, i * IPV6_LEN);
  }

  /** The index of an IPv6 address given as text (added when new), or undefined. */
  parse(text: string): number | undefined {
    const a = parseIpv6(text);
    if (a === undefined) return undefined;
    const idx = this.intern(a, 0);
    return idx === 0 ? undefined : idx;
  }

  /** The address of entry `idx` as text ("::" for 0 or an unused entry). */
  format(idx: number): string {
    if (idx <= 0 || idx >= this.used) return "::";
    return formatIpv6(this.bytes, idx * IPV6_LEN);
  }
}
