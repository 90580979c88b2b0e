// Keeps the dataplane's peers equal to the other nodes' leases: list, program the
// difference, then follow the watch. When the store goes away the dataplane keeps its
// last known peers (forwarding never depends on the store being up); the loop retries
// with backoff and, once back, re-lists and reconciles (adds new nodes, removes gone
// ones), so nothing missed during the outage lingers.
import type { Logger } from "pino";
import type { Mode } from "../dataplane/config.js";
import { type LeasePeer, peerFromLease } from "./flannel.js";
import type { LeaseEvent, LeaseRecord, Store, Watch } from "./store.js";

/** The part of the Dataplane the sync drives. */
export interface PeerTarget {
  addPeer(p: LeasePeer): Promise<void>;
  delPeer(address: string): Promise<void>;
}

export interface PeerSyncOptions {
  mode: Mode;
  /** Our own subnet: our lease is not a peer. */
  ownSubnet: string;
  /** Dual stack: program the IPv6 half of leases too. */
  ipv6?: boolean;
  /** Our underlay is IPv6: a peer is reached at its lease's PublicIPv6 (required). */
  underlay6?: boolean;
  log: Logger;
  /** Backoff bounds for reconnecting to the store. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Seconds each full re-list took to reconcile (metrics). */
  onReconcile?: (seconds: number) => void;
  /** Peers already programmed (a restart's cache): reconciled like any others. */
  initial?: LeasePeer[];
  /** After every change of the programmed peers (the agent caches them). */
  onChange?: (peers: LeasePeer[]) => void;
  /** A lease newly not programmed (its reason is logged once). */
  onIgnore?: () => void;
}

export interface SyncStatus {
  watching: boolean;
  /** Epoch ms of the last full re-list. */
  lastSync?: number;
  resyncs: number;
}

const same = (a: LeasePeer, b: LeasePeer) =>
  a.address === b.address &&
  a.subnet === b.subnet &&
  a.vtepMac === b.vtepMac &&
  a.subnet6 === b.subnet6 &&
  a.vtepMac6 === b.vtepMac6 &&
  a.publicIpv6 === b.publicIpv6;

export class PeerSync {
  /** Programmed peers by subnet. */
  readonly peers = new Map<string, LeasePeer>();
  private readonly status: SyncStatus = { watching: false, resyncs: 0 };
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly ignored = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly target: PeerTarget,
    private readonly o: PeerSyncOptions,
  ) {
    for (const p of o.initial ?? []) if (p.subnet) this.peers.set(p.subnet, p);
  }

  getStatus(): SyncStatus {
    return { ...this.status };
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.queue;
  }

  /** Serialize table changes: events arrive faster than `ip route` runs. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((e: Error) => {
      this.o.log.error({ err: e.message }, "programming a peer failed");
    });
    return this.queue;
  }

  private async run(): Promise<void> {
    const min = this.o.minBackoffMs ?? 200;
    const max = this.o.maxBackoffMs ?? 3000;
    let delay = min;
    while (!this.stopped) {
      let watch: Watch | undefined;
      try {
        const snap = await this.store.listLeases();
        const t0 = performance.now();
        await this.enqueue(() => this.reconcile(snap.leases));
        this.o.onReconcile?.((performance.now() - t0) / 1000);
        this.status.lastSync = Date.now();
        this.status.resyncs++;
        await new Promise<void>((resolve, reject) => {
          this.wake = resolve;
          this.store
            .watchLeases(
              snap,
              (e) => void this.enqueue(() => this.apply(e)),
              (err) => {
                this.o.log.warn({ err: err.message }, "store watch lost; keeping last known peers");
                resolve();
              },
            )
            .then((w) => {
              watch = w;
              this.status.watching = true;
              delay = min;
              if (this.stopped) resolve();
            }, reject);
        });
      } catch (e) {
        this.o.log.warn(
          { err: (e as Error).message, retryMs: delay },
          "store unreachable; forwarding on last known peers",
        );
      } finally {
        watch?.cancel();
        this.status.watching = false;
        this.wake = undefined;
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      delay = Math.min(delay * 2, max);
    }
  }

  /** Make the programmed peers equal to `leases` (minus our own). */
  private async reconcile(leases: LeaseRecord[]): Promise<void> {
    const live = new Set<string>();
    for (const l of leases) {
      live.add(l.subnet);
      await this.put(l);
    }
    for (const subnet of [...this.peers.keys()]) {
      if (!live.has(subnet)) await this.remove(subnet);
    }
  }

  private async apply(e: LeaseEvent): Promise<void> {
    if (e.type === "put") await this.put(e.lease);
    else await this.remove(e.subnet);
  }

  private async put(l: LeaseRecord): Promise<void> {
    if (l.subnet === this.o.ownSubnet) return;
    const spec = peerFromLease(l, l.value, this.o.mode, this.o.ipv6, this.o.underlay6);
    if (typeof spec === "string") {
      const fresh = this.ignored.get(l.subnet) !== spec;
      // remove() forgets the reason (a deleted lease); a renewal must not log it again.
      await this.remove(l.subnet);
      this.ignored.set(l.subnet, spec);
      if (fresh) {
        this.o.log.warn({ subnet: l.subnet, why: spec }, "ignoring lease");
        this.o.onIgnore?.();
      }
      return;
    }
    this.ignored.delete(l.subnet);
    const have = this.peers.get(l.subnet);
    if (have && same(have, spec)) return; // a renewal
    if (have) await this.remove(l.subnet);
    // A node that moved to another subnet: its old entries go first (the dataplane keys
    // peers by node address).
    for (const [subnet, p] of this.peers) {
      if (p.address === spec.address) await this.remove(subnet);
    }
    await this.target.addPeer(spec);
    this.peers.set(l.subnet, spec);
    this.o.onChange?.([...this.peers.values()]);
    this.o.log.info({ ...spec }, "peer added");
  }

  private async remove(subnet: string): Promise<void> {
    this.ignored.delete(subnet);
    const p = this.peers.get(subnet);
    if (!p) return;
    this.peers.delete(subnet);
    this.o.onChange?.([...this.peers.values()]);
    await this.target.delPeer(p.address).catch(() => undefined);
    this.o.log.info({ ...p }, "peer removed");
  }
}
