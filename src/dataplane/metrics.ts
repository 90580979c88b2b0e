// Opt-in Prometheus exporter (config `metrics.address`). Values are read from the
// dataplane's counter arrays at scrape time, so the hot loop pays nothing for it.
import { createServer, type Server } from "node:http";
import { Counter, Registry } from "prom-client";
import type { Stats } from "./stats.js";

type Snapshot = ReturnType<Stats["snapshot"]>;

export async function serveMetrics(address: string, snapshot: () => Snapshot): Promise<Server> {
  const registry = new Registry();
  const first = snapshot();
  for (const name of Object.keys(first.counters)) {
    new Counter({
      name: `vxtun_${name}_total`.replace(/_total_total$/, "_total"),
      help: `vxtun counter ${name}`,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(snapshot().counters[name]);
      },
    });
  }
  new Counter({
    name: "vxtun_drops_total",
    help: "packets dropped, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, v] of Object.entries(snapshot().drops)) this.inc({ reason }, v);
    },
  });
  const [host, port] = address.split(":");
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("see /metrics\n");
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), host, () => resolve());
  });
  return server;
}
