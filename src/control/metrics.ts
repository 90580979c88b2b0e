// The node agent's metrics and health, served on the dataplane's exporter (config
// `metrics.address`, /metrics and /healthz). The agent calls these as hooks: its store
// and its peer target are wrapped (errors counted, peer programming timed and dated),
// renewals and reconciles are reported. One agent per process, so the registry is the
// module's.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { addHealthCheck, addMetricsRegistry } from "../dataplane/metrics.js";
import type { LeasePeer } from "./flannel.js";
import type { PeerTarget } from "./peers.js";
import { LeaseTakenError, type Store, type StoreHealth } from "./store.js";

const registry = new Registry();
addMetricsRegistry(registry);
const registers = [registry];

const renewals = new Counter({
  name: "vxtun_agent_lease_renewals_total",
  help: "subnet lease renewals, by result (ok, failed: retried within a second)",
  labelNames: ["result"],
  registers,
});
const storeErrors = new Counter({
  name: "vxtun_agent_store_errors_total",
  help: "store (etcd or file) operations that failed, by operation",
  labelNames: ["op"],
  registers,
});
const peerChanges = new Counter({
  name: "vxtun_agent_peer_changes_total",
  help: "peers added to or removed from the dataplane, by change (add, del)",
  labelNames: ["change"],
  registers,
});
const leasesIgnored = new Counter({
  name: "vxtun_agent_leases_ignored_total",
  help: "other nodes' leases not programmed (another backend or mode, no PublicIPv6 on an IPv6 underlay...); the agent's log says why",
  registers,
});
const peerProgramming = new Histogram({
  name: "vxtun_agent_peer_program_duration_seconds",
  help: "time to program one peer into the dataplane (route, neighbour, FDB entry) or remove it",
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers,
});
const reconciles = new Histogram({
  name: "vxtun_agent_reconcile_duration_seconds",
  help: "time to make the dataplane's peers equal to the store's leases after a full re-list",
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});

/** Epoch ms each peer (by node address) was programmed: its age in `vxtun status`. */
const since = new Map<string, number>();

/** The store with every failed operation counted (a refused claim is an answer, not one). */
export function storeWithMetrics<S extends Store>(store: S): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (r instanceof Promise) {
          r.catch((e: unknown) => {
            if (!(e instanceof LeaseTakenError)) storeErrors.inc({ op: prop });
          });
        }
        return r;
      };
    },
  });
}

/** The dataplane as the peer sync drives it, with each change counted, timed and dated. */
export function peerTargetWithMetrics(target: PeerTarget): PeerTarget {
  return {
    async addPeer(p: LeasePeer) {
      const end = peerProgramming.startTimer();
      await target.addPeer(p);
      end();
      peerChanges.inc({ change: "add" });
      since.set(p.address, Date.now());
    },
    async delPeer(address: string) {
      const end = peerProgramming.startTimer();
      try {
        await target.delPeer(address);
      } finally {
        end();
        peerChanges.inc({ change: "del" });
        since.delete(address);
      }
    },
  };
}

/** When the peer at `address` was programmed (epoch ms). */
export function peerSince(address: string): number | undefined {
  return since.get(address);
}

export function leaseRenewed(ok: boolean): void {
  renewals.inc({ result: ok ? "ok" : "failed" });
}

export function reconciled(seconds: number): void {
  reconciles.observe(seconds);
}

/**
 * Gauges read from the running agent at scrape time, and its /healthz check: unhealthy
 * while the store fails or once the lease has run out.
 */
export function watchAgent(a: { expiresAt: () => number; store: () => StoreHealth }): void {
  new Gauge({
    name: "vxtun_agent_lease_expiry_timestamp_seconds",
    help: "when the node's subnet lease runs out (Unix time); renewed an hour before",
    registers,
    collect() {
      this.set(a.expiresAt() / 1000);
    },
  });
  new Gauge({
    name: "vxtun_agent_store_up",
    help: "1 when the last store operation succeeded, else 0 (forwarding goes on)",
    registers,
    collect() {
      this.set(a.store().ok ? 1 : 0);
    },
  });
  addHealthCheck("agent", () => {
    const h = a.store();
    if (!h.ok) return `store failing: ${h.error ?? "unknown error"}`;
    if (a.expiresAt() < Date.now()) return "subnet lease expired";
    return undefined;
  });
}

/** A lease the peer sync could not program (logged once with its reason). */
export function leaseIgnored(): void {
  leasesIgnored.inc();
}
