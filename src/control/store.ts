// The agent's view of the cluster store: flannel's two kinds of records (the network
// config and one lease per node subnet) behind one interface, so the embedded file store
// (one machine, labs) and etcd (clusters, flanneld interop) are interchangeable.
import type { LeaseSubnets, LeaseValue, NetworkConfig } from "./flannel.js";

/** One lease: its subnets (IPv4, and IPv6 in a dual-stack lease, as flannel keys it). */
export interface LeaseRecord extends LeaseSubnets {
  value: LeaseValue;
  /** Epoch ms when the lease runs out, where the store knows it cheaply. */
  expiresAt?: number;
}

export interface LeaseSnapshot {
  leases: LeaseRecord[];
  /** Opaque position: a watch started from this snapshot sees every later change. */
  revision: number;
}

export type LeaseEvent =
  | { type: "put"; lease: LeaseRecord }
  | ({ type: "delete" | "expire" } & LeaseSubnets);

export interface Watch {
  cancel(): void;
}

export interface StoreHealth {
  ok: boolean;
  /** Last failure, one line. */
  error?: string;
  /** Epoch ms of the last successful operation. */
  lastOk?: number;
}

/** The subnet is held by another node (different PublicIP) and not expired. */
export class LeaseTakenError extends Error {
  override name = "LeaseTakenError";
  constructor(
    readonly subnet: string,
    readonly holder: string,
  ) {
    super(`subnet ${subnet} is leased to ${holder}`);
  }
}

/** Our lease is gone and another node holds the subnet now. */
export class LeaseLostError extends LeaseTakenError {
  override name = "LeaseLostError";
}

export interface Store {
  readonly kind: "file" | "etcd";
  health(): StoreHealth;
  getConfig(): Promise<NetworkConfig | undefined>;
  /** Write `config` unless one exists; returns the one stored (ours or the earlier one). */
  putConfigIfAbsent(config: NetworkConfig): Promise<NetworkConfig>;
  /**
   * Claim a subnet: succeeds if it is free, expired, or already leased to the same
   * PublicIP (a restarting node re-claims its own); else LeaseTakenError. Atomic against
   * other claimants (create-if-absent / compare-and-swap).
   */
  createLease(
    lease: LeaseSubnets,
    value: LeaseValue,
    ttlSeconds: number,
  ): Promise<{ expiresAt: number }>;
  /** Extend our lease (re-creating it if it expired meanwhile); LeaseLostError if taken. */
  renewLease(
    lease: LeaseSubnets,
    value: LeaseValue,
    ttlSeconds: number,
  ): Promise<{ expiresAt: number }>;
  /**
   * Remove a lease of ours whose key no longer fits the network config (an IPv4-only
   * lease once the network is dual stack), as flanneld deletes an incompatible lease.
   */
  deleteLease(lease: LeaseSubnets): Promise<void>;
  /** Live (unexpired) leases. */
  listLeases(): Promise<LeaseSnapshot>;
  /**
   * Changes after `from`. onError means the watch is dead (store unreachable): the
   * caller re-lists and watches again, so nothing is missed across an outage.
   */
  watchLeases(
    from: LeaseSnapshot,
    onEvent: (e: LeaseEvent) => void,
    onError: (err: Error) => void,
  ): Promise<Watch>;
  close(): Promise<void>;
}

/** Tracks a store's health from the outcome of its operations. */
export class HealthTracker {
  private state: StoreHealth = { ok: true };

  get(): StoreHealth {
    return { ...this.state };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      this.state = { ok: true, lastOk: Date.now() };
      return r;
    } catch (e) {
      // A refused claim is an answer, not an outage.
      if (e instanceof LeaseTakenError) {
        this.state = { ok: true, lastOk: Date.now() };
      } else {
        this.state = {
          ok: false,
          error: (e as Error).message.split("\n")[0],
          lastOk: this.state.lastOk,
        };
      }
      throw e;
    }
  }

  fail(e: Error): void {
    this.state = { ok: false, error: e.message.split("\n")[0], lastOk: this.state.lastOk };
  }
}
