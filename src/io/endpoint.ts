// Shared plumbing for everything that moves batches through the addon: TUN/TAP queues,
// UDP sockets and raw sockets. One native Io per fd; one JS callback per batch.
import type { Batch } from "./batch.js";
import type { GsoBatch } from "./gso-batch.js";
import { C, type ErrnoError, type NativeIo, native } from "./native.js";
import type { Slab, SlabWaiter } from "./slab.js";

/** Counter indices into `IoEndpoint.stats` (a Float64Array the addon increments). */
export const STAT = {
  rxPackets: C.STAT_RX_PACKETS,
  rxBytes: C.STAT_RX_BYTES,
  rxBatches: C.STAT_RX_BATCHES,
  rxTruncated: C.STAT_RX_TRUNCATED,
  rxErrors: C.STAT_RX_ERRORS,
  txPackets: C.STAT_TX_PACKETS,
  txBytes: C.STAT_TX_BYTES,
  txCalls: C.STAT_TX_CALLS,
  txPartial: C.STAT_TX_PARTIAL,
  eagain: C.STAT_EAGAIN,
  enobufs: C.STAT_ENOBUFS,
  econnrefused: C.STAT_ECONNREFUSED,
  emsgsize: C.STAT_EMSGSIZE,
  txErrors: C.STAT_TX_ERRORS,
  poolExhausted: C.STAT_POOL_EXHAUSTED,
  errQueue: C.STAT_ERRQUEUE,
  pollErrors: C.STAT_POLL_ERRORS,
} as const;

export type IoCounters = { -readonly [K in keyof typeof STAT]: number };

export type BatchHandler = (batch: Batch) => void;
export type IoErrorHandler = (err: ErrnoError) => void;
/** Path MTU learned for a destination: from a send that failed with EMSGSIZE (mtu from
 * the socket error queue, 0 when unknown) or an ICMP "fragmentation needed". */
export type PmtuHandler = (addr: number, port: number, mtu: number) => void;

export abstract class IoEndpoint implements SlabWaiter {
  readonly fd: number;
  readonly slab: Slab;
  /** Live counters; index with STAT.*, or call counters() for a snapshot object. */
  readonly stats: Float64Array;
  protected readonly io: NativeIo;
  private batch: Batch | undefined;
  private onErr: IoErrorHandler | undefined;
  private isClosed = false;
  /** Set by sockets' users to hear about EMSGSIZE / path MTU. */
  onPmtu: PmtuHandler | undefined;

  protected constructor(fd: number, kind: number, slab: Slab) {
    this.fd = fd;
    this.slab = slab;
    this.stats = new Float64Array(new ArrayBuffer(C.STAT_COUNT * 8));
    this.io = new native.Io(
      fd,
      kind,
      slab.buffer,
      this.stats,
      (_errno, err) => this.fatal(err),
      (addr, port, mtu) => this.onPmtu?.(addr, port, mtu),
    );
    slab.addWaiter(this);
  }

  /** "tun vxt0", "udp 198.18.0.1:8472": prefixes error messages. */
  abstract describe(): string;

  /**
   * Start reading into `batch`: on readiness the addon reads up to `maxBatch` packets
   * into free slab slots and calls `onBatch(batch)` once, with batch.count set. The
   * handler owns those slots (free them, or send and free). With no free slot the
   * reader pauses until Slab.free() returns one. A fatal error (device deleted,
   * socket broken) stops reading and calls `onError` once.
   */
  startReading(
    batch: Batch,
    onBatch: BatchHandler,
    onError: IoErrorHandler,
    maxBatch = batch.capacity,
  ): void {
    if (this.isClosed) throw new Error(`${this.describe()}: closed`);
    if (this.batch) throw new Error(`${this.describe()}: already reading`);
    this.batch = batch;
    this.onErr = onError;
    const s = this.slab;
    this.io.start(
      s.stack,
      s.meta,
      s.slotSize,
      s.headroom,
      batch.slot,
      batch.off,
      batch.len,
      batch.addr,
      batch.port,
      Math.min(maxBatch, batch.capacity),
      (count: number) => {
        batch.count = count;
        onBatch(batch);
      },
    );
  }

  /** End reading; startReading() may be called again (e.g. with another handler). */
  stopReading(): void {
    if (this.isClosed || !this.batch) return;
    this.io.stop();
    this.batch = undefined;
    this.onErr = undefined;
  }

  /** The batch whose gather lists the addon holds (see useGather). */
  private gatherOf: Batch | undefined;

  /** Hand `batch`'s gather lists (if any) to the addon before writing or sending it. */
  protected useGather(batch: Batch): void {
    if (batch === this.gatherOf || this.isClosed) return;
    this.gatherOf = batch;
    const g = batch.gather;
    if (g === undefined) this.io.setGather(null);
    else this.io.setGather(g.start, g.count, g.off, g.len);
  }

  /**
   * sendmmsg of `batch`'s messages [from, from+count) with their gather lists, per-message
   * UDP_SEGMENT size and TOS/TTL (0: none); see GsoBatch. Sockets only.
   */
  protected sendMessages(batch: GsoBatch, from: number, count: number): number {
    this.useGather(batch);
    return this.io.sendGso(
      batch.off,
      batch.len,
      batch.addr,
      batch.port,
      batch.gso,
      batch.tosTtl,
      from,
      count,
    );
  }

  /** Stop polling (packets queue in the kernel) until resume(). */
  pause(): void {
    if (!this.isClosed) this.io.pause();
  }

  resume(): void {
    if (!this.isClosed) this.io.resume();
  }

  /** SlabWaiter: slots came back after this reader starved. */
  wake(): void {
    if (!this.isClosed) this.io.wake();
  }

  /** Let the process exit even while reading (tools; not the dataplane). */
  unref(): void {
    if (!this.isClosed) this.io.unref();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  counters(): IoCounters {
    const out = {} as IoCounters;
    for (const k of Object.keys(STAT) as (keyof typeof STAT)[]) out[k] = this.stats[STAT[k]];
    return out;
  }

  /** Release the fd and the poll handle. Idempotent. */
  close(): void {
    this.closeIo(true);
  }

  protected closeIo(closeFd: boolean): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.slab.removeWaiter(this);
    this.io.close(closeFd);
  }

  private fatal(err: ErrnoError): void {
    err.message = `${this.describe()}: ${err.message}`;
    this.batch = undefined;
    const h = this.onErr;
    this.onErr = undefined;
    h?.(err);
  }
}
