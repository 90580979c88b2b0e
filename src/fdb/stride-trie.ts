// What the longest-prefix-match tries for IPv4 (lpm.ts) and IPv6 (lpm6.ts) share: a first
// level of 65,536 slots indexed by the address's first 16 bits, then 256-slot nodes, one
// per further address byte that some stored prefix reaches into. lpm.ts says why this
// structure; this file holds the storage and the update rules.
//
// Updates use controlled prefix expansion: a prefix paints every slot it covers unless a
// longer prefix already owns it, which per-slot prefix lengths record. Nodes are freed
// when their last longer prefix is deleted.
//
// Slot encoding in `val`: 0 = no route, > 0 = route id, < 0 = -(base index of a child node).

export const L0_SLOTS = 65536;
export const NODE = 256;

export class StrideTrie {
  protected val = new Int32Array(0);
  /** Prefix length that painted each leaf slot; -1 when empty (16 bits: IPv6 has /128). */
  private plen = new Int16Array(0);
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

  /** Live child nodes (for memory reporting). */
  get nodes(): number {
    return this.nodesUsed - this.freeNodes.length;
  }

  /** Bytes held by the slot arrays (capacity, not just live nodes). */
  get bytes(): number {
    return this.val.byteLength + this.plen.byteLength + this.refs.byteLength * 2;
  }

  /** Base index of the node under `slot`, creating it from the slot's leaf if needed. */
  protected child(slot: number): number {
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

  /** Base index of the existing node under `slot` (for removal, which never creates). */
  protected node(slot: number): number {
    return -this.val[slot];
  }

  /** Drop one reference; with none left every slot holds the same leaf: fold it back. */
  protected release(base: number): void {
    const k = nodeIndex(base);
    if (--this.refs[k] > 0) return;
    const slot = this.parent[k];
    this.val[slot] = this.val[base];
    this.plen[slot] = this.plen[base];
    this.freeNodes.push(base);
  }

  protected paintRange(start: number, count: number, id: number, len: number): void {
    for (let i = start; i < start + count; i++) {
      const v = this.val[i];
      if (v < 0) {
        this.paintRange(-v, NODE, id, len);
      } else if (len >= this.plen[i]) {
        this.val[i] = id;
        this.plen[i] = len;
      }
    }
  }

  /** Slots holding `id` fall back to the longest shorter covering prefix (or empty: 0, -1). */
  protected unpaintRange(start: number, count: number, id: number, fbId: number, fbLen: number) {
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
    this.plen = copyInto(new Int16Array(slots).fill(-1), this.plen);
    this.refs = copyInto(new Int32Array(cap), this.refs);
    this.parent = copyInto(new Int32Array(cap), this.parent);
    this.nodeCap = cap;
  }
}

/** `to` with `from` copied to its start. */
function copyInto<T extends Int32Array | Int16Array>(to: T, from: T): T {
  to.set(from);
  return to;
}

function nodeIndex(base: number): number {
  return (base - L0_SLOTS) / NODE;
}
