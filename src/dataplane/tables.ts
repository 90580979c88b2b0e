// The forwarding tables as plain data, so that queue workers (queues.ts) can hold
// copies: the main thread owns the tables (control socket, agent, PMTU discovery,
// ageing) and sends a snapshot to every worker after each change. Workers only read
// them, so a copy per thread is the whole of the sharing: no locks on the hot path.
// vxlan-l2 learning is the one write from the data path: a worker learns into its copy
// and tells the main thread, which learns into the real table and sends a new snapshot
// (see queues.ts); learned entries arrive as learned ones, so they can still move.
import { Fdb, Neigh6Table, NeighTable, RouteTable, RouteTable6 } from "../fdb/index.js";

export interface TablesSnapshot {
  routes: {
    prefix: number;
    len: number;
    gateway: number;
    onlink: boolean;
    remote: number;
    mtu: number;
    metric: number;
  }[];
  /** Neighbours with a MAC (programmed ones; vxlan mode has no others). */
  neigh: { ip: number; mac: number }[];
  fdb: { mac: number; remote: number; vni: number; port: number; learned: boolean }[];
  flood: number[];
  /** IPv6 routes and neighbours (addresses as 16 bytes: structured clone copies them). */
  routes6: {
    prefix: Uint8Array;
    len: number;
    gateway: Uint8Array | undefined;
    onlink: boolean;
    remote: number;
    mtu: number;
    metric: number;
  }[];
  neigh6: { ip: Uint8Array; mac: number }[];
}

export interface Tables {
  fdb: Fdb;
  neigh: NeighTable;
  routes: RouteTable;
  routes6: RouteTable6;
  neigh6: Neigh6Table;
}

export interface TableDefaults {
  dev: string;
  vni: number;
  dstPort: number;
}

export function snapshotTables(t: Tables): TablesSnapshot {
  return {
    routes: t.routes.list().map(routeFields),
    neigh: t.neigh
      .entries()
      .filter((e) => e.mac >= 0)
      .map((e) => ({ ip: e.ip, mac: e.mac })),
    fdb: t.fdb.entries().map((e) => ({
      mac: e.mac,
      remote: e.remote,
      vni: e.vni,
      port: e.port,
      learned: !e.isStatic,
    })),
    flood: [...t.fdb.floodList()],
    routes6: t.routes6.list().map(routeFields),
    neigh6: t.neigh6.entries().map((e) => ({ ip: e.ip, mac: e.mac })),
  };
}

/** A route of either family as plain data (the class's fields, no methods). */
function routeFields<P, G>(r: {
  prefix: P;
  len: number;
  gateway: G;
  onlink: boolean;
  remote: number;
  mtu: number;
  metric: number;
}) {
  const { prefix, len, gateway, onlink, remote, mtu, metric } = r;
  return { prefix, len, gateway, onlink, remote, mtu, metric };
}

/** Fresh tables holding exactly the snapshot's entries. */
export function tablesFrom(s: TablesSnapshot, d: TableDefaults): Tables {
  const fdb = new Fdb({ dev: d.dev, vni: d.vni, dstPort: d.dstPort, ageingMs: 0 });
  const neigh = new NeighTable({ dev: d.dev });
  const routes = new RouteTable({ dev: d.dev });
  for (const r of s.routes) {
    routes.replace(r.prefix, r.len, {
      gateway: r.gateway || undefined,
      onlink: r.onlink,
      remote: r.remote || undefined,
      mtu: r.mtu || undefined,
      metric: r.metric,
    });
  }
  for (const n of s.neigh) neigh.replace(n.ip, n.mac);
  for (const e of s.fdb) {
    // Learned at time 0: the worker reports an entry as seen (queues.ts) only after a
    // frame of its own refreshed it, not because the copy is new.
    if (e.learned) fdb.learn(e.mac, e.remote, 0);
    else fdb.replace(e.mac, e.remote, { vni: e.vni, port: e.port });
  }
  for (const ip of s.flood) fdb.append(0, ip);
  const routes6 = new RouteTable6({ dev: d.dev });
  for (const r of s.routes6) {
    routes6.replace(r.prefix, r.len, {
      gateway: r.gateway,
      onlink: r.onlink,
      remote: r.remote || undefined,
      mtu: r.mtu || undefined,
      metric: r.metric,
    });
  }
  const neigh6 = new Neigh6Table({ dev: d.dev });
  for (const n of s.neigh6) neigh6.replace(n.ip, n.mac);
  return { fdb, neigh, routes, routes6, neigh6 };
}
