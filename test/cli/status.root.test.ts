// Operators' views of two running agents (file store, lab namespaces): `vxtun status`
// and `stats --watch` through the real CLI, abbreviations, and the Prometheus exporter
// scraped over HTTP ([::1]:port and :port) with its text format parsed here and every
// family checked against the naming conventions (HELP, _total counters, base units);
// /healthz turns 503 when the store fails.
import { rmSync, writeFileSync } from "node:fs";
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { meshComplete, pingBridges, startAgent, tempDir, waitFor } from "../fixtures/agents.js";

interface Family {
  help?: string;
  type?: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** The Prometheus text exposition format (0.0.4), strictly: one family per HELP/TYPE. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    const f = families.get(name) ?? { samples: [] };
    families.set(name, f);
    return f;
  };
  const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
  const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]);
      if (meta[1] === "HELP") f.help = meta[3];
      else f.type = meta[3];
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(LABEL)].map((l) => [l[1], l[2]]));
    const base = m[1].replace(/_(bucket|sum|count)$/, "");
    const owner = families.has(m[1]) ? m[1] : base;
    family(owner).samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return families;
}

/**
 * prom-client's default Node metrics that predate the conventions (gauges named
 * _total); they are what every Node exporter publishes, so dashboards expect them.
 */
const LEGACY = new Set([
  "nodejs_active_resources_total",
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
]);

/** Names that break the conventions (https://prometheus.io/docs/practices/naming/). */
function conventionProblems(families: Map<string, Family>): string[] {
  const bad: string[] = [];
  for (const [name, f] of families) {
    if (LEGACY.has(name)) continue;
    if (!f.type) bad.push(`${name}: no TYPE`);
    if (!f.help || f.help.length < 10) bad.push(`${name}: no useful HELP ("${f.help ?? ""}")`);
    if (f.type === "counter" && !name.endsWith("_total"))
      bad.push(`${name}: counter without _total`);
    if (f.type !== "counter" && name.endsWith("_total")) bad.push(`${name}: _total on a ${f.type}`);
    if (/_(ms|milliseconds|microseconds|kb|mb|kbytes|mbytes|percent)(_|$)/.test(name)) {
      bad.push(`${name}: not a base unit`);
    }
    if (/(^|_)bytes_/.test(name) && !/_bytes(_total)?$/.test(name)) {
      bad.push(`${name}: bytes not as the unit suffix`);
    }
    if (f.type === "histogram" && f.samples.length > 0) {
      const inf = f.samples.some((s) => s.name === `${name}_bucket` && s.labels.le === "+Inf");
      if (!inf) bad.push(`${name}: histogram without le="+Inf"`);
    }
  }
  return bad;
}

t.test("status, stats --watch and metrics of two agents", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes } = await buildUnderlay(lab, 2);
  const storeDir = tempDir(t, "store");
  // The lab's nodes run without IPv6; the exporter's IPv6 listening needs ::1 on lo.
  for (const n of nodes) {
    await lab.exec(n.ns, ["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
  }
  const base = { store: { type: "file", dir: storeDir }, leaseTtlSeconds: 3 };
  // An exporter on each: [::1] on n1, every address (IPv4 and IPv6) on n2.
  const m1 = await startAgent(t, lab, nodes[0], { ...base, metrics: { address: "[::1]:9180" } });
  const m2 = await startAgent(t, lab, nodes[1], { ...base, metrics: { address: ":9181" } });
  const both = new Map([
    [m1, (await m1.report()).subnet],
    [m2, (await m2.report()).subnet],
  ]);
  await waitFor("full mesh", () => meshComplete([m1, m2], both), 3000);

  const cli = async (args: string[]) => m1.proc.cli(args);
  const gw = (a: typeof m1) => both.get(a)!.replace(/0\/24$/, "1");

  const status = await cli(["status", "-j", "-i", "0.5"]);
  t.equal(status.code, 0, "status -j", { stderr: status.stderr });
  const s = JSON.parse(status.stdout);
  t.match(s, {
    version: /^\d+\.\d+\.\d+/,
    uptimeSeconds: Number,
    dataplane: { device: "vxtun0", mode: "vxlan", mtu: Number },
    rates: { seconds: Number, counters: { tun_rx_packets: Number } },
    agent: {
      subnet: both.get(m1),
      lease: { expiresAt: String },
      store: { kind: "file", ok: true },
      peers: [{ address: nodes[1].address, subnet: both.get(m2), since: Number }],
    },
  });
  t.ok(Date.parse(s.agent.lease.expiresAt) > Date.now(), "the lease is live");

  const text = await cli(["status"]);
  t.match(text.stdout, /^peers: +1$/m, "status text lists the peer");
  t.match(
    text.stdout,
    new RegExp(`^ {2}${nodes[1].address.replace(/\./g, "\\.")} .*, up \\d+s$`, "m"),
  );
  t.match(text.stdout, /^store: +file ok/m);

  const ambiguous = await cli(["st"]);
  t.equal(ambiguous.code, 1);
  t.match(ambiguous.stderr, /^vxtun: "vxtun st" is ambiguous: stats, status$/m);
  const routes = await cli(["ro", "s", "-j"]);
  t.match(JSON.parse(routes.stdout), [{ dst: both.get(m2) }], "vxtun ro s -j is route show --json");

  // Traffic during the watch: rates per second in every frame, one JSON object a line.
  const [watch] = await Promise.all([
    cli(["stats", "--watch", "-i", "1", "-c", "2", "-j"]),
    pingBridges(lab, m1, gw(m1), gw(m2), 8),
  ]);
  t.equal(watch.code, 0, "stats --watch", { stderr: watch.stderr });
  const frames = watch.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  t.equal(frames.length, 2, "two frames");
  t.ok(
    frames.some((f) => f.counters.tun_rx_packets >= 0.5 && f.counters.encap_packets > 0),
    `pings show as packets per second (${frames.map((f) => f.counters.tun_rx_packets).join(", ")})`,
  );

  const get = async (a: typeof m1, url: string) => {
    const r = await lab.exec(a.node.ns, [
      "/usr/bin/python3",
      "-c",
      "import sys,urllib.request,urllib.error\ntry:\n r=urllib.request.urlopen(sys.argv[1]);print(r.status);print(r.read().decode(),end='')\nexcept urllib.error.HTTPError as e:\n print(e.code);print(e.read().decode(),end='')",
      url,
    ]);
    const nl = r.stdout.indexOf("\n");
    return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1), err: r.stderr };
  };
  await waitFor(
    "a lease renewal",
    async () =>
      /vxtun_agent_lease_renewals_total\{result="ok"\} [1-9]/.test(
        (await get(m1, "http://[::1]:9180/metrics")).body,
      ),
    5000,
    200,
  );
  const scrape = await get(m1, "http://[::1]:9180/metrics");
  t.equal(scrape.status, 200, "scraped over IPv6", { err: scrape.err });
  const families = parseExposition(scrape.body);
  t.same(conventionProblems(families), [], "every family follows the naming conventions");
  const one = (name: string) => families.get(name)?.samples[0];
  t.match(one("vxtun_build_info"), {
    labels: { version: s.version, commit: /^[0-9a-f]{7,}$|^unknown$/, node: nodes[0].name },
    value: 1,
  });
  t.equal(one("vxtun_peers")?.value, 1, "peers gauge");
  t.equal(one("vxtun_routes")?.value, 1, "routes gauge");
  t.equal(one("vxtun_fdb_entries")?.value, 1, "FDB gauge");
  t.equal(one("vxtun_neighbours")?.value, 1, "neighbours gauge");
  t.ok((one("vxtun_queues")?.value ?? 0) >= 1, "queues gauge");
  t.ok((one("vxtun_slab_slots_in_use")?.value ?? -1) >= 0, "slab gauge");
  t.ok((one("vxtun_tun_rx_packets_total")?.value ?? 0) > 0, "traffic counted");
  for (const name of [
    "process_cpu_user_seconds_total",
    "process_resident_memory_bytes",
    "nodejs_heap_size_used_bytes",
    "nodejs_eventloop_lag_seconds",
    "vxtun_drops_total",
    "vxtun_agent_store_errors_total",
    "vxtun_agent_lease_expiry_timestamp_seconds",
    "vxtun_agent_store_up",
    "vxtun_agent_peer_program_duration_seconds",
  ]) {
    t.ok(families.has(name), `exports ${name}`);
  }
  const reconcile = families.get("vxtun_agent_reconcile_duration_seconds");
  t.equal(reconcile?.type, "histogram");
  t.ok(
    (reconcile?.samples.find((x) => x.name.endsWith("_count"))?.value ?? 0) >= 1,
    "a reconcile observed",
  );
  const v4 = await get(m2, "http://127.0.0.1:9181/metrics");
  const v6 = await get(m2, "http://[::1]:9181/metrics");
  t.ok(v4.status === 200 && v6.status === 200, ":port listens on IPv4 and IPv6");
  t.same(await get(m1, "http://[::1]:9180/healthz"), { status: 200, body: "ok\n", err: "" });

  // The store breaks (its directory becomes a file): renewals fail, /healthz says so.
  rmSync(storeDir, { recursive: true, force: true });
  writeFileSync(storeDir, "not a directory\n");
  await waitFor(
    "healthz 503",
    async () => (await get(m1, "http://[::1]:9180/healthz")).status === 503,
    5000,
    200,
  );
  const sick = await get(m1, "http://[::1]:9180/healthz");
  t.match(sick.body, /^agent: store failing: /, "healthz names the failure");
  const after = parseExposition((await get(m1, "http://[::1]:9180/metrics")).body);
  t.ok(
    (after.get("vxtun_agent_store_errors_total")?.samples ?? []).some((x) => x.value > 0),
    "store errors counted",
  );
  t.equal(after.get("vxtun_agent_store_up")?.samples[0]?.value, 0, "store_up 0");
  rmSync(storeDir, { force: true });
});
