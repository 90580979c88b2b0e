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
// The price is memory and update work: the first level is 65,536 slots (320 KB); each /16
// holding a longer prefix gets a 256-slot node, and each /24 holding a longer prefix one
// more (1.25 KB per node). Nodes are freed when their last longer prefix is deleted.
// Updates use controlled prefix expansion: a prefix paints every slot it covers unless a
// longer prefix already owns it, which per-slot prefix lengths record.
//
// Slot encoding in `val`: 0 = no route, > 0 = route id, < 0 = -(base index of a child node).

const L0_SLOTS = 65536;
const NODE = 256;

export class Lpm {
  private val = new Int32Array(0);
  /** Prefix length that painted each leaf slot; -1 when empty. */
  private plen = new Int8Array(0);
  /** Per node: number of stored prefixes longer than the node's level boundary. */
  private refs = new Int32Array(0);
  /** Per node: the slot that points at it, to collapse it back into a leaf. */
  private parent = new Int32Array(0);
  private nodeCap = 0;
  private nodesUsed = 0;
  private readonly freeNodes: number[] = [];

  constructor(initialNodes = 16) {
    this.resize(initialNodes);
  }

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

  /** Live child nodes (for memory reporting). */
  get nodes(): number {
    return this.nodesUsed - this.freeNodes.length;
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
    const s1 = addr >>> 16;
    const n1 = -this.val[s1];
    if (len <= 24) {
      this.unpaintRange(n1 + ((addr >>> 8) & 0xff), 1 << (24 - len), id, fallbackId, fallbackLen);
    } else {
      const s2 = n1 + ((addr >>> 8) & 0xff);
      const n2 = -this.val[s2];
      this.unpaintRange(n2 + (addr & 0xff), 1 << (32 - len), id, fallbackId, fallbackLen);
      this.release(n2);
    }
    this.release(n1);
  }

  /** Base index of the node under `slot`, creating it from the slot's leaf if needed. */
  private child(slot: number): number {
    let base = -this.val[slot];
    if (base <= 0) {
      base = this.allocNode();
      this.val.fill(this.val[slot], base, base + NODE);
      this.plen.fill(this.plen[slot], base, base + NODE);
      this.val[slot] = -base;
      this.parent[nodeIndex(base)] = slot;
    }
    this.refs[nodeIndex(base)]++;
    return base;
  }

  /** Drop one reference; with none left every slot holds the same leaf: fold it back. */
  private release(base: number): void {
    const k = nodeIndex(base);
    if (--this.refs[k] > 0) return;
    const slot = this.parent[k];
    this.val[slot] = this.val[base];
    this.plen[slot] = this.plen[base];
    this.freeNodes.push(base);
  }

  private paintRange(start: number, count: number, id: number, len: number): void {
    for (let i = start; i < start + count; i++) this.paint(i, id, len);
  }

  private paint(i: number, id: number, len: number): void {
    const v = this.val[i];
    if (v < 0) {
      this.paintRange(-v, NODE, id, len);
    } else if (len >= this.plen[i]) {
      this.val[i] = id;
      this.plen[i] = len;
    }
  }

  private unpaintRange(start: number, count: number, id: number, fbId: number, fbLen: number) {
    for (let i = start; i < start + count; i++) {
      const v = this.val[i];
      if (v < 0) {
        this.unpaintRange(-v, NODE, id, fbId, fbLen);
      } else if (v === id) {
        this.val[i] = fbId;
        this.plen[i] = fbLen;
      }
    }
  }

  private allocNode(): number {
    const reused = this.freeNodes.pop();
    if (reused !== undefined) {
      this.refs[nodeIndex(reused)] = 0;
      return reused;
    }
    if (this.nodesUsed === this.nodeCap) this.resize(this.nodeCap * 2);
    return L0_SLOTS + this.nodesUsed++ * NODE;
  }

  /** Make room for `cap` child nodes, keeping everything stored. */
  private resize(cap: number): void {
    const slots = L0_SLOTS + cap * NODE;
    this.val = copyInto(new Int32Array(slots), this.val);
    this.plen = copyInto(new Int8Array(slots).fill(-1), this.plen);
    this.refs = copyInto(new Int32Array(cap), this.refs);
    this.parent = copyInto(new Int32Array(cap), this.parent);
    this.nodeCap = cap;
  }
}

/** `to` with `from` copied to its start. */
function copyInto<T extends Int32Array | Int8Array>(to: T, from: T): T {
  to.set(from);
  return to;
}

function nodeIndex(base: number): number {
  return (base - L0_SLOTS) / NODE;
}
