// Opt-in Prometheus exporter (config `metrics.address`) with /metrics and /healthz.
// Values are read from the dataplane's counter arrays and tables at scrape time, so the
// hot loop pays nothing for it. Other parts of the process (the node agent) add their
// own registry and health checks here, and one endpoint serves them all.
import { createServer, type Server } from "node:http";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { buildCommit, VERSION } from "../cli/version.js";
import type { Stats } from "./stats.js";

type Snapshot = ReturnType<Stats["snapshot"]>;

/** What the exporter reads from a dataplane (Dataplane implements it). */
export interface MetricsSource {
  statsSnapshot(): Snapshot;
  info(): { name: string };
  readonly fdb: { readonly size: number };
  readonly neigh: { readonly size: number };
  readonly routes: { readonly size: number };
  readonly peers: { readonly size: number };
  readonly slab: { readonly count: number; readonly available: number };
  readonly queueInfo: { readonly count: number };
}

/** Registries served beside the dataplane's (the agent's, src/control/metrics.ts). */
const extraRegistries = new Set<Registry>();
/** /healthz checks by name: a failing one makes it answer 503 with its reason. */
const healthChecks = new Map<string, () => string | undefined>();

export function addMetricsRegistry(r: Registry): void {
  extraRegistries.add(r);
}

/** `check` returns undefined when healthy, else why not (one line). */
export function addHealthCheck(name: string, check: () => string | undefined): void {
  healthChecks.set(name, check);
}

/** HELP texts of the traffic counters (the names are `vxtun stats`'s). */
const HELP: Record<string, string> = {
  tun_rx_packets: "packets read from the TUN/TAP device (pods to the overlay)",
  tun_rx_bytes: "bytes read from the TUN/TAP device",
  tun_rx_batches: "read batches from the TUN/TAP device (packets per batch = packets / batches)",
  tun_tx_packets: "packets written to the TUN/TAP device (overlay to pods)",
  tun_tx_bytes: "bytes written to the TUN/TAP device",
  underlay_rx_packets: "encapsulated packets received from other nodes",
  underlay_rx_bytes: "bytes received from other nodes, outer headers included",
  underlay_rx_batches: "receive batches (recvmmsg calls that returned data)",
  underlay_tx_packets: "encapsulated packets sent to other nodes",
  underlay_tx_bytes: "bytes sent to other nodes, outer headers included",
  underlay_tx_batches: "send batches (sendmmsg calls)",
  encap_packets: "packets encapsulated",
  decap_packets: "packets decapsulated",
  flood_copies: "copies sent for broadcast, unknown unicast and multicast (vxlan-l2)",
  send_eagain: "underlay sends refused with EAGAIN (socket buffer full)",
  send_enobufs: "underlay sends refused with ENOBUFS",
  tun_write_errors: "failed writes to the TUN/TAP device",
};

const counterName = (n: string) => `vxtun_${n}_total`.replace(/_total_total$/, "_total");

function dataplaneRegistry(src: MetricsSource): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "vxtun_build_info",
    help: "vxtun's version and git commit, and the node (instance) name; always 1",
    labelNames: ["version", "commit", "node"],
    registers,
  }).set({ version: VERSION, commit: buildCommit(), node: src.info().name }, 1);

  // The counters are read once per scrape, not once per metric.
  let snap: Snapshot = src.statsSnapshot();
  let taken = 0;
  const fresh = () => {
    if (Date.now() - taken > 100) {
      snap = src.statsSnapshot();
      taken = Date.now();
    }
    return snap;
  };
  for (const name of Object.keys(snap.counters)) {
    new Counter({
      name: counterName(name),
      help: HELP[name] ?? `vxtun counter ${name.replace(/_/g, " ")} (see vxtun stats)`,
      registers,
      collect() {
        this.reset();
        this.inc(fresh().counters[name]);
      },
    });
  }
  new Counter({
    name: "vxtun_drops_total",
    help: "packets dropped, by reason (the reasons of vxtun stats)",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const [reason, v] of Object.entries(fresh().drops)) this.inc({ reason }, v);
    },
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  gauge(
    "vxtun_fdb_entries",
    "entries in the forwarding database (MAC to node)",
    () => src.fdb.size,
  );
  gauge("vxtun_neighbours", "entries in the neighbour table (IP to MAC)", () => src.neigh.size);
  gauge("vxtun_routes", "overlay routes (pod subnet to VTEP or node)", () => src.routes.size);
  gauge(
    "vxtun_peers",
    "remote nodes programmed (route, neighbour and FDB entry)",
    () => src.peers.size,
  );
  gauge(
    "vxtun_queues",
    "forwarding queues (threads with their own device queue)",
    () => src.queueInfo.count,
  );
  gauge(
    "vxtun_slab_slots",
    "packet slots in the main thread's shared buffer",
    () => src.slab.count,
  );
  gauge(
    "vxtun_slab_slots_in_use",
    "packet slots of the main thread's buffer held by the kernel or in flight",
    () => src.slab.count - src.slab.available,
  );
  return registry;
}

/** "127.0.0.1:9180", "[::1]:9180", "[::]:9180" or ":9180" (every address). */
export function parseListenAddress(address: string): { host?: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]*)):(\d{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    throw new Error(
      `metrics address "${address}": expected host:port, [IPv6]:port or :port, e.g. 127.0.0.1:9180`,
    );
  }
  return { host: m[1] ?? (m[2] || undefined), port };
}

export async function serveMetrics(address: string, src: MetricsSource): Promise<Server> {
  const own = dataplaneRegistry(src);
  const { host, port } = parseListenAddress(address);
  const server = createServer((req, res) => {
    if (req.url === "/healthz") {
      const failing = [...healthChecks]
        .map(([name, check]) => [name, check()] as const)
        .filter(([, why]) => why !== undefined);
      const body = failing.length
        ? `${failing.map(([name, why]) => `${name}: ${why}`).join("\n")}\n`
        : "ok\n";
      res.writeHead(failing.length ? 503 : 200, { "content-type": "text/plain" }).end(body);
      return;
    }
    if (req.url !== "/metrics") {
      res.writeHead(404).end("see /metrics and /healthz\n");
      return;
    }
    const registry = extraRegistries.size ? Registry.merge([own, ...extraRegistries]) : own;
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
