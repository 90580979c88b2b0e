// The dataplane's side of the control verbs: each verb of verbs.ts (but the agent's) as
// an operation on a running instance. The server has already checked the arguments
// against the verb, so the required ones are strings here; the tables' own errors
// (TableError: bad MAC, host bits set, no such entry) go back to the client as they are.

import { VERSION } from "../cli/version.js";
import type { PeerSpec } from "../dataplane/dataplane.js";
import { parseMac } from "../encap/addr.js";
import type {
  Fdb,
  Neigh6Table,
  NeighTable,
  RouteSpec,
  RouteTable,
  RouteTable6,
} from "../fdb/index.js";
import type { Args, Handler, VerbName } from "./verbs.js";

/** What the verbs need from a dataplane (Dataplane implements it). */
export interface ControlTarget {
  readonly fdb: Fdb;
  readonly neigh: NeighTable;
  readonly routes: RouteTable;
  readonly neigh6: Neigh6Table;
  readonly routes6: RouteTable6;
  readonly peers: ReadonlyMap<string, PeerSpec>;
  /** The tables changed here: queue workers need the news. */
  tablesChanged(): void;
  /** A route in the table and the kernel's route for its prefix into our device. */
  addRoute(prefix: string, spec: RouteSpec): Promise<void>;
  delRoute(prefix: string): Promise<void>;
  addPeer(p: PeerSpec): Promise<void>;
  delPeer(address: string): Promise<void>;
  /** startedAt: epoch ms the instance started (uptime in `stats`). */
  readonly stats: { readonly startedAt: number };
  statsSnapshot(): object;
  info(): unknown;
}

export type DataplaneVerb = Exclude<VerbName, "agent">;

const str = (v: Args[string]) => v as string;
const opt = (v: Args[string]) => v as string | undefined;
/** IPv6 by the address, as `ip` tells the family. */
const v6 = (v: Args[string]) => str(v).includes(":");

export function dataplaneHandlers(dp: ControlTarget): Record<DataplaneVerb, Handler> {
  /** A table edit; the queue workers' copies follow it. */
  const edit =
    (fn: (a: Args) => void): Handler =>
    (a) => {
      fn(a);
      dp.tablesChanged();
    };
  return {
    "fdb.show": (a) => (a.json ? dp.fdb.showJson() : dp.fdb.show({ dev: true })),
    "fdb.add": edit((a) =>
      // The all-zeros MAC is `bridge fdb append`'s: one more flood remote.
      parseMac(str(a.mac)) === 0
        ? dp.fdb.append(0, str(a.dst))
        : dp.fdb.add(str(a.mac), str(a.dst)),
    ),
    "fdb.del": edit((a) => dp.fdb.del(str(a.mac), opt(a.dst))),
    "neigh.show": (a) =>
      a.json
        ? [...dp.neigh.showJson(), ...dp.neigh6.showJson()]
        : dp.neigh.show({ dev: true }) + dp.neigh6.show({ dev: true }),
    "neigh.add": edit((a) => (v6(a.ip) ? dp.neigh6 : dp.neigh).add(str(a.ip), str(a.lladdr))),
    "neigh.del": edit((a) => (v6(a.ip) ? dp.neigh6 : dp.neigh).del(str(a.ip))),
    "route.show": (a) =>
      a.json
        ? [...dp.routes.showJson(), ...dp.routes6.showJson()]
        : dp.routes.show() + dp.routes6.show(),
    "route.add": (a) =>
      dp.addRoute(str(a.prefix), {
        gateway: opt(a.via),
        onlink: !!a.onlink,
        remote: opt(a.remote),
        mtu: a.mtu as number | undefined,
      }),
    "route.del": (a) => dp.delRoute(str(a.prefix)),
    "peer.show": (a) => {
      const list = [...dp.peers.values()];
      if (a.json) return list;
      return list
        .map((p) =>
          [p.address, p.subnet && `subnet ${p.subnet}`, p.vtepMac && `vtep-mac ${p.vtepMac}`]
            .filter(Boolean)
            .join(" "),
        )
        .join("\n");
    },
    "peer.add": (a) =>
      dp.addPeer({ address: str(a.address), subnet: opt(a.subnet), vtepMac: opt(a.vtepMac) }),
    "peer.del": (a) => dp.delPeer(str(a.address)),
    stats: () => ({
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - dp.stats.startedAt) / 1000),
      ...dp.statsSnapshot(),
    }),
    info: () => dp.info(),
  };
}
