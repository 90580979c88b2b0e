// Longest-prefix match over IPv6: the IPv4 trie's layout (lpm.ts, stride-trie.ts)
// continued to 128 bits: 16 bits at the first level, then one 256-slot node per further
// byte a stored prefix reaches into. A lookup reads the address where it lies in the
// packet and costs one array read per level the matching prefixes reach: 7 for the /64
// pod subnets flannel hands out, 15 at most, however many routes there are. A hash map
// per prefix length would probe up to 129 lengths and hash 16 bytes each time.

import { StrideTrie } from "./stride-trie.js";

/** Bits resolved by the first level; each node below resolves one more byte. */
const L0_BITS = 16;

export class Lpm6 extends StrideTrie {
  /** Route id of the longest prefix covering the 16-byte address at buf[off], or 0. */
  find(buf: Uint8Array, off: number): number {
    const val = this.val;
    let v = val[(buf[off] << 8) | buf[off + 1]];
    let at = off + 2;
    while (v < 0) v = val[-v + buf[at++]];
    return v;
  }

  /** Store id (> 0) for addr/len; addr (16 bytes) has no host bits; the prefix is new. */
  insert(addr: Uint8Array, len: number, id: number): void {
    let slot = (addr[0] << 8) | addr[1];
    if (len <= L0_BITS) {
      this.paintRange(slot, 1 << (L0_BITS - len), id, len);
      return;
    }
    for (let depth = 1; ; depth++) {
      const base = this.child(slot);
      const end = L0_BITS + 8 * depth;
      if (len <= end) {
        this.paintRange(base + addr[depth + 1], 1 << (end - len), id, len);
        return;
      }
      slot = base + addr[depth + 1];
    }
  }

  /**
   * Remove addr/len (stored as id); slots it owned fall back to the longest shorter
   * prefix covering it (fallbackId, fallbackLen), or to empty with (0, -1).
   */
  remove(addr: Uint8Array, len: number, id: number, fallbackId: number, fallbackLen: number) {
    let slot = (addr[0] << 8) | addr[1];
    if (len <= L0_BITS) {
      this.unpaintRange(slot, 1 << (L0_BITS - len), id, fallbackId, fallbackLen);
      return;
    }
    const path: number[] = [];
    for (let depth = 1; ; depth++) {
      const base = this.node(slot);
      path.push(base);
      const end = L0_BITS + 8 * depth;
      if (len <= end) {
        this.unpaintRange(base + addr[depth + 1], 1 << (end - len), id, fallbackId, fallbackLen);
        break;
      }
      slot = base + addr[depth + 1];
    }
    for (let i = path.length - 1; i >= 0; i--) this.release(path[i]);
  }
}
