// Longest-prefix match over IPv4: a 16-8-8 multibit trie in typed arrays (the DIR-16-8-8
// layout), storing small integer ids; route.ts keeps the routes and the exact-prefix index.
//
// Why this structure (measured in bench/fdb.ts, 10,000 random /16-/32 routes):
// - A lookup is at most three dependent array reads (ip>>>16, then the next 8 bits, then
//   the last 8), independent of how many routes or distinct prefix lengths exist, and it
//   allocates nothing.
// - The alternative, one hash map per prefix length probed from the longest length
//   present down, costs up to 17 Map.get calls for a miss with /16-/32 routes (33 with all
//   lengths), and every probe hashes; that measured several times slower.
// - A binary trie walks up to 32 nodes chasing object pointers.
// The price is memory and update work: the first level is 65,536 slots (384 KB); each /16
// holding a longer prefix gets a 256-slot node, and each /24 holding a longer prefix one
// more (1.5 KB per node). Storage and updates live in stride-trie.ts, shared with IPv6.

import { StrideTrie } from "./stride-trie.js";

export class Lpm extends StrideTrie {
  /** Route id of the longest prefix covering ip, or 0. Accepts uint32 or int32 form. */
  find(ip: number): number {
    const val = this.val;
    let v = val[ip >>> 16];
    if (v < 0) {
      v = val[-v + ((ip >>> 8) & 0xff)];
      if (v < 0) v = val[-v + (ip & 0xff)];
    }
    return v;
  }

  /** Store id (> 0) for addr/len; addr must have no host bits; the prefix must be new. */
  insert(addr: number, len: number, id: number): void {
    if (len <= 16) {
      this.paintRange(addr >>> 16, 1 << (16 - len), id, len);
      return;
    }
    const n1 = this.child(addr >>> 16);
    if (len <= 24) {
      this.paintRange(n1 + ((addr >>> 8) & 0xff), 1 << (24 - len), id, len);
      return;
    }
    const n2 = this.child(n1 + ((addr >>> 8) & 0xff));
    this.paintRange(n2 + (addr & 0xff), 1 << (32 - len), id, len);
  }

  /**
   * Remove addr/len (stored as id); slots it owned fall back to the longest shorter
   * prefix covering it (fallbackId, fallbackLen), or to empty with (0, -1).
   */
  remove(addr: number, len: number, id: number, fallbackId: number, fallbackLen: number): void {
    if (len <= 16) {
      this.unpaintRange(addr >>> 16, 1 << (16 - len), id, fallbackId, fallbackLen);
      return;
    }
    const n1 = this.node(addr >>> 16);
    if (len <= 24) {
      this.unpaintRange(n1 + ((addr >>> 8) & 0xff), 1 << (24 - len), id, fallbackId, fallbackLen);
    } else {
      const n2 = this.node(n1 + ((addr >>> 8) & 0xff));
      this.unpaintRange(n2 + (addr & 0xff), 1 << (32 - len), id, fallbackId, fallbackLen);
      this.release(n2);
    }
    this.release(n1);
  }
}
