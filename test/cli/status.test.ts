// The CLI's words and views without a running instance: iproute2-style abbreviations
// (unique prefixes expand, ambiguous ones fail listing the candidates), -j on every
// show verb, rates from two stats samples, and the status and watch text. The views
// against a running agent are in test/cli/status.root.test.ts.
import t from "tap";
import { commandWords, VERBS, type VerbName } from "../../src/api/verbs.js";
import { expandAbbreviations } from "../../src/cli/abbrev.js";
import { formatObject } from "../../src/cli/format.js";
import { buildProgram } from "../../src/cli/main.js";
import { duration, formatRates, formatStatus, ratesBetween } from "../../src/cli/status.js";

const expand = (...words: string[]) =>
  expandAbbreviations(buildProgram(), ["node", "vxtun", ...words]).slice(2);

t.test("unique prefixes expand at every level, arguments stay", async (t) => {
  t.same(expand("route", "s"), ["route", "show"]);
  t.same(expand("ro", "sh", "-j"), ["route", "show", "-j"]);
  t.same(expand("nei", "a", "10.0.0.1", "lladdr", "02:00:00:00:00:01"), [
    "neigh",
    "add",
    "10.0.0.1",
    "lladdr",
    "02:00:00:00:00:01",
  ]);
  t.same(expand("--socket", "/run/x.sock", "f", "sh"), ["--socket", "/run/x.sock", "fdb", "show"]);
  t.same(expand("--name=n1", "stats", "-w"), ["--name=n1", "stats", "-w"], "exact names stay");
  t.same(expand("ag", "st"), ["agent", "status"]);
  t.same(expand("ag", "-c", "s.yaml"), ["agent", "-c", "s.yaml"], "an option's value is no word");
  t.same(expand("l", "e", "n1-p1", "--", "ip", "r"), ["lab", "exec", "n1-p1", "--", "ip", "r"]);
  t.same(expand("lab", "up", "--nodes", "2"), ["lab", "up", "--nodes", "2"]);
  t.same(expand("frob"), ["frob"], "unknown words are commander's to report");
});

t.test("an ambiguous prefix is an error naming the candidates", async (t) => {
  t.throws(() => expand("st"), /^"vxtun st" is ambiguous: stats, status$/);
  t.throws(() => expand("r", "show"), /^"vxtun r" is ambiguous: route, run$/);
  t.throws(
    () => expand("--name", "n1", "stat", "-j"),
    /^"vxtun stat" is ambiguous: stats, status$/,
  );
  t.same(expand("route", "d", "10.0.0.0/8"), ["route", "del", "10.0.0.0/8"]);
});

t.test("every show verb takes -j and --json", async (t) => {
  const program = buildProgram();
  const shows = (Object.keys(VERBS) as VerbName[]).filter(
    (n) => n.endsWith(".show") || ["stats", "info", "agent"].includes(n),
  );
  for (const name of [...shows, "status"]) {
    const words = name === "status" ? ["status"] : commandWords(name as VerbName);
    let cmd = program;
    for (const w of words) cmd = cmd.commands.find((c) => c.name() === w) ?? cmd;
    const o = cmd.options.find((o) => o.long === "--json");
    t.equal(o?.short, "-j", `${words.join(" ")}: -j, --json`);
  }
});

const sample = (k: number) => ({
  counters: { tun_rx_packets: 100 * k, tun_rx_bytes: 150_000 * k, encap_packets: 7 },
  drops: { no_route: 3 * k, bad_vxlan: 0 },
});

t.test("rates per second between two samples", async (t) => {
  const r = ratesBetween(sample(1), sample(3), 2);
  t.equal(r.counters.tun_rx_packets, 100);
  t.equal(r.counters.tun_rx_bytes, 150_000);
  t.equal(r.counters.encap_packets, 0);
  t.equal(r.drops.no_route, 3);
  t.equal(r.dropsTotal, 3);
  const text = formatRates(r, new Date(0));
  t.match(text, /device rx 100 pps 1\.20Mbit\/s/);
  t.match(text, /tun_rx_packets +100\/s/);
  t.match(text, /drop no_route +3\/s/);
  t.notMatch(text, /encap_packets/, "counters that did not move are left out");
});

t.test("status text: dataplane, agent, lease, store, peers with their age", async (t) => {
  const now = Date.parse("2026-12-01T12:00:00Z");
  const text = formatStatus(
    {
      version: "0.1.0",
      uptimeSeconds: 3725,
      dataplane: {
        name: "n1",
        mode: "vxlan",
        device: "vxtun0",
        mtu: 1450,
        underlayMtu: 1500,
        vtepMac: "02:00:00:00:01:01",
        local: "198.18.0.1",
        vni: 1,
        port: 8472,
      },
      offload: { state: "on", tunOffloads: ["tso4"], udpSegment: true, udpGro: true },
      queues: { count: 2, why: "one per core", rx: [5, 6] },
      rates: ratesBetween(sample(1), sample(2), 1),
      drops: { no_route: 6 },
      agent: {
        subnet: "10.244.1.0/24",
        gateway: "10.244.1.1",
        network: "10.244.0.0/16",
        lease: { ttlSeconds: 86400, expiresAt: "2026-12-02T11:00:00.000Z" },
        store: { kind: "etcd", ok: false, error: "connection refused", lastOk: now - 90_000 },
        peers: [{ address: "198.18.0.2", subnet: "10.244.2.0/24", since: now - 125_000 }],
      },
    },
    now,
  );
  for (const re of [
    /^vxtun 0\.1\.0, n1, up 1h2m$/m,
    /mtu 1450 \(underlay 1500\)/,
    /offload: +on \(tun tso4, udp_segment yes, udp_gro yes\)/,
    /queues: +2 \(one per core\)/,
    /drops: +no_route 6/,
    /subnet: +10\.244\.1\.0\/24 of 10\.244\.0\.0\/16, gateway 10\.244\.1\.1/,
    /lease: +expires 2026-12-02T11:00:00\.000Z \(in 23h0m\)/,
    /store: +etcd FAILING, last ok 1m30s ago, last error: connection refused/,
    /^ {2}198\.18\.0\.2 10\.244\.2\.0\/24, up 2m5s$/m,
  ]) {
    t.match(text, re);
  }
  t.equal(duration(90061), "1d1h1m");
});

t.test("text for JSON-shaped results", async (t) => {
  t.equal(
    formatObject({ a: 1, b: { c: "x" }, l: [1, 2], p: [{ address: "x", n: 2 }], u: undefined }),
    "a: 1\nb:\n  c: x\nl: 1 2\np: 1\n  address x, n 2",
  );
});
