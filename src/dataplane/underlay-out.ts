// The underlay side of a device batch: finished outer packets for the header-including
// raw socket (one sendmmsg), and the fast path's segments: UDP_SEGMENT messages packed
// per pool socket (vxlan modes), or gathered raw packets (ipip). Sent after the batch
// (or earlier, when a batch fills), each through the one counted flush (flush.ts).
import { Drop } from "../encap/drop.js";
import { Batch } from "../io/batch.js";
import { GsoBatch } from "../io/gso-batch.js";
import { countFlush, FlushCounters } from "./flush.js";
import type { UdpSenderPool } from "./offload/fastpath.js";
import type { BatchSink, FwdState, GatherSink } from "./state.js";
import { C } from "./stats.js";

export class UnderlayOut {
  /** Finished outer packets for the raw socket. */
  readonly raw: Batch;
  /** VXLAN fast path: UDP sockets on the flow source ports (see fastpath.ts). */
  readonly pool: UdpSenderPool | undefined;
  readonly poolPorts: Uint16Array | undefined;
  /** IPIP fast path: segments (header block + payload range) for the raw socket. */
  readonly ipipOut: GsoBatch | undefined;
  private readonly gather: GatherSink | undefined;
  private readonly rawCounts: FlushCounters;
  private readonly gsoCounts: FlushCounters;

  constructor(
    private readonly s: FwdState,
    private readonly sink: BatchSink,
  ) {
    const o = s.o;
    const fast = s.fast;
    this.pool = fast?.pool;
    this.poolPorts = fast?.pool?.ports;
    this.gather = fast?.raw;
    this.ipipOut =
      fast?.raw !== undefined ? new GsoBatch(o.batch * 4).withGather(o.batch * 8) : undefined;
    // Room for one flood copy per remote per packet without reallocating.
    this.raw = new Batch(Math.min(1024, o.batch * 4));
    // Raw sends and pool messages count alike, but a pool message also counts as a
    // gso_send and stands for as many packets as its segment size cuts it into.
    const c = s.stats.counters;
    const drops = s.stats.drops;
    const batches = C.underlay_tx_batches;
    const packets = C.underlay_tx_packets;
    const bytes = C.underlay_tx_bytes;
    this.rawCounts = new FlushCounters(c, batches, -1, packets, bytes, drops, Drop.SendError, 0);
    this.gsoCounts = new FlushCounters(
      c,
      batches,
      C.gso_sends,
      packets,
      bytes,
      drops,
      Drop.SendError,
      0,
    );
  }

  /** Queue a finished outer packet for the raw socket (room checked by the caller). */
  push(slot: number, off: number, len: number, remote: number): void {
    this.raw.push(slot, off, len, remote, 0);
  }

  /** Make room for `n` more raw packets. */
  room(n: number): void {
    if (this.raw.count + n > this.raw.capacity) this.flushRaw();
  }

  flushRaw(): void {
    const b = this.raw;
    if (b.count === 0) return;
    countFlush(b, undefined, this.sink.sendBatch(b, 0, b.count), this.rawCounts);
  }

  /** Everything queued, after a batch. */
  flush(): void {
    this.flushRaw();
    const pool = this.pool;
    if (pool !== undefined) {
      for (let k = 0; k < pool.size; k++) if (pool.batches[k].count > 0) this.flushPoolSocket(k);
    }
    if (this.ipipOut !== undefined) this.flushIpip();
  }

  private flushIpip(): void {
    const b = this.ipipOut!;
    if (b.count === 0) return;
    countFlush(b, undefined, this.gather!.sendGather(b, 0, b.count), this.rawCounts);
  }

  private flushPoolSocket(k: number): void {
    const pool = this.pool!;
    const b = pool.batches[k];
    countFlush(b, b.gso, pool.sockets[k].sendGso(b, 0, b.count), this.gsoCounts);
  }

  /** ipip: start a gathered message of two ranges to the resolved destination. */
  ipipMessage(): GsoBatch {
    const b = this.ipipOut!;
    const s = this.s;
    if (!b.pushGsoGather(s.hdrSlot, s.curRemote, 0, 0, 0, 2)) {
      this.flushIpip();
      b.pushGsoGather(s.hdrSlot, s.curRemote, 0, 0, 0, 2);
    }
    return b;
  }

  /**
   * How many more `segSize`-byte segments pool socket k's last message can take: it
   * must go to the resolved destination with the same TOS/TTL and hold only whole
   * segments of that size (UDP_SEGMENT cuts a message into equal datagrams, the last
   * may be shorter: so none may follow a short one), at most `perMsg` of them. 0: start
   * a new message.
   */
  poolRoom(k: number, segSize: number, meta: number, perMsg: number): number {
    const b = this.pool!.batches[k];
    const i = b.count - 1;
    const s = this.s;
    // (curRemote may be held signed; the batch column is unsigned.)
    if (i < 0 || (b.addr[i] | 0) !== (s.curRemote | 0) || b.port[i] !== s.curPort) return 0;
    if (b.tosTtl[i] !== meta || (b.gso[i] !== segSize && b.gso[i] !== 0)) return 0;
    const len = b.len[i];
    const have = (len / segSize) | 0;
    if (have * segSize !== len || have >= perMsg) return 0;
    const g = b.gather!;
    const ranges = (g.capacity - g.used) >> 1;
    return Math.min(perMsg - have, ranges);
  }

  /**
   * Start a gathered message of `ranges` ranges to the resolved destination on pool
   * socket k's batch, sending that batch first when it is full. Returns the batch.
   */
  poolMessage(k: number, gso: number, meta: number, ranges: number): GsoBatch {
    const b = this.pool!.batches[k];
    const s = this.s;
    if (!b.pushGsoGather(s.hdrSlot, s.curRemote, s.curPort, gso, meta, ranges)) {
      this.flushPoolSocket(k);
      b.pushGsoGather(s.hdrSlot, s.curRemote, s.curPort, gso, meta, ranges);
    }
    return b;
  }
}
