// Multi-queue forwarding (`io.queues`): the TUN/TAP is opened with IFF_MULTI_QUEUE and
// every extra queue runs in a worker thread of its own, with its own slab, its own
// queue fd (the kernel picks a device queue per flow), its own SO_REUSEPORT socket on
// the VXLAN port (the kernel picks a socket per outer 4-tuple; ipip: a filtered raw
// socket, steer.ts) and its own sender pool on the same source ports. Queue 0 stays on
// the main thread.
//
// Sharing: the tables are read-mostly, so each worker holds a copy (tables.ts) that the
// main thread replaces after every change (control socket, agent, PMTU discovery).
// Counters are SharedArrayBuffers the worker increments and `vxtun stats` adds up. A
// worker that learns a smaller path MTU (EMSGSIZE) tells the main thread, which lowers
// the route and sends the new tables to everyone.
//
// vxlan-l2 learning: a worker that learns a new MAC (or sees one move) learns it into
// its copy and sends it here; the main thread learns it into the real FDB (counting
// fdb_learned) and sends new tables. Ageing stays with the main thread: once a second
// each worker reports the learned MACs that frames refreshed in its copy ("seen"), so
// an entry in use on any queue is refreshed where it ages.
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { ForwarderOptions } from "./forwarder.js";
import type { UnderlaySpec } from "./sockets.js";
import { Stats, statsBuffer } from "./stats.js";
import { snapshotTables, type TableDefaults, type Tables } from "./tables.js";

/** Everything a queue worker needs (structured-clonable; see queue-worker.ts). */
export interface QueueInit {
  index: number;
  device: { name: string; kind: "tun" | "tap"; offloads: number; vnet: boolean };
  slab: { count: number; slotSize: number; headroom: number };
  underlay: UnderlaySpec;
  fwd: ForwarderOptions;
  /** Fast path: UDP_SEGMENT accepted (else one sendmmsg entry per segment). */
  udpSegment: boolean;
  tables: TableDefaults;
  stats: SharedArrayBuffer;
  /** Send/write error counters of the worker's endpoints (sumIoErrors, in order). */
  io: SharedArrayBuffer;
}

export type QueueInitBase = Omit<QueueInit, "index" | "stats" | "io">;

/** Worker -> main messages. */
export type QueueMessage =
  | { type: "ready" }
  | { type: "pmtu"; addr: number; mtu: number }
  | { type: "learn"; mac: number; remote: number }
  | { type: "seen"; macs: number[]; remotes: number[] }
  | { type: "fatal"; message: string }
  | { type: "stopped" };

/** What sumIoErrors() writes, in order (a worker publishes them for `vxtun stats`). */
export const IO_ERROR_FIELDS = [
  "eagain",
  "enobufs",
  "econnrefused",
  "emsgsize",
  "tunWrite",
] as const;
/** Slots of a worker's io buffer: IO_ERROR_FIELDS, then the slab's exhaustion count. */
export const IO_SLOTS = IO_ERROR_FIELDS.length + 1;

/**
 * Start the worker module: queue-worker.js when built; from source (tests, benches run
 * through tsx) queue-worker.ts, after registering tsx's loader in the new thread, since
 * Node 20 does not carry `--import tsx` into workers.
 */
function spawnQueueWorker(workerData: unknown): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./queue-worker.js", import.meta.url), { workerData });
  }
  const api = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./queue-worker.ts", import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData });
}

interface Running {
  worker: Worker;
  stats: Stats;
  io: Float64Array;
}

/** What the main thread does with a worker's messages. */
export interface QueueHandlers {
  pmtu: (addr: number, mtu: number) => void;
  fatal: (message: string) => void;
  /** A MAC a worker learned: a new entry, or one that moved. */
  learn: (mac: number, remote: number) => void;
  /** A learned MAC whose frames a worker saw in the last second. */
  seen: (mac: number, remote: number) => void;
}

export class QueueSet {
  private readonly running: Running[] = [];
  private stopping = false;
  private syncPending = false;

  private constructor(
    private readonly tables: Tables,
    private readonly log: Logger,
  ) {}

  /**
   * Start queues 1..count-1. Resolves when all of them forward; rejects (and stops
   * the ones that started) when one cannot open its queue or sockets.
   */
  static async start(
    count: number,
    base: QueueInitBase,
    tables: Tables,
    log: Logger,
    on: QueueHandlers,
  ): Promise<QueueSet> {
    const onFatal = on.fatal;
    const set = new QueueSet(tables, log);
    try {
      for (let index = 1; index < count; index++) {
        const stats = statsBuffer();
        const io = new SharedArrayBuffer(IO_SLOTS * 8);
        const init: QueueInit = { ...base, index, stats, io };
        const worker = spawnQueueWorker({ init, snapshot: snapshotTables(tables) });
        const r: Running = { worker, stats: new Stats(stats), io: new Float64Array(io) };
        set.running.push(r);
        await new Promise<void>((resolve, reject) => {
          const early = (e: Error) => reject(new Error(`queue ${index}: ${e.message}`));
          worker.once("error", early);
          worker.on("message", (m: QueueMessage) => {
            if (m.type === "ready") {
              worker.off("error", early);
              worker.on("error", (e) => onFatal(`queue ${index}: ${e.message}`));
              resolve();
            } else if (m.type === "pmtu") on.pmtu(m.addr, m.mtu);
            else if (m.type === "learn") on.learn(m.mac, m.remote);
            else if (m.type === "seen") {
              for (let k = 0; k < m.macs.length; k++) on.seen(m.macs[k], m.remotes[k]);
            } else if (m.type === "fatal") {
              if (!set.stopping) onFatal(`queue ${index}: ${m.message}`);
              reject(new Error(`queue ${index}: ${m.message}`));
            }
          });
        });
      }
    } catch (e) {
      await set.stop();
      throw e;
    }
    log.debug({ queues: count }, "queue workers running");
    return set;
  }

  /** Worker queues (not counting queue 0). */
  get size(): number {
    return this.running.length;
  }

  /** Send every worker the current tables (after any change on the main thread). */
  syncTables(): void {
    if (this.running.length === 0) return;
    const snapshot = snapshotTables(this.tables);
    for (const r of this.running) r.worker.postMessage({ type: "tables", snapshot });
  }

  /**
   * syncTables() once this turn of the event loop is over: a burst of learned MACs (a
   * batch of frames from new pods) becomes one snapshot, not one per MAC.
   */
  syncSoon(): void {
    if (this.syncPending || this.running.length === 0) return;
    this.syncPending = true;
    setImmediate(() => {
      this.syncPending = false;
      if (!this.stopping) this.syncTables();
    });
  }

  /** Worker i's counters (i = 0 is queue 1). */
  statsOf(i: number): Stats {
    return this.running[i].stats;
  }

  /** Worker i's endpoint error counters and slab exhaustion count. */
  ioOf(i: number): Float64Array {
    return this.running[i].io;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.running.map(
        (r) =>
          new Promise<void>((resolve) => {
            const done = () => resolve();
            // A worker closes its fds and says so; if it cannot, terminate it.
            const t = setTimeout(() => void r.worker.terminate().then(done, done), 2000);
            r.worker.on("message", (m: QueueMessage) => {
              if (m.type === "stopped") {
                clearTimeout(t);
                void r.worker.terminate().then(done, done);
              }
            });
            r.worker.once("exit", () => {
              clearTimeout(t);
              done();
            });
            r.worker.postMessage({ type: "stop" });
          }),
      ),
    );
    this.running.length = 0;
    this.log.debug("queue workers stopped");
  }
}
