// The control verbs' table is the one place a verb is written: every verb has a usage
// line naming its words, the CLI reaches every verb under its name, the dataplane
// serves every verb but the agent's, and the server checks arguments against the table
// whoever sends them. No root needed: a server on a socket in a temporary directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parseWords } from "../../src/api/args.js";
import { controlCall } from "../../src/api/client.js";
import { type ControlTarget, dataplaneHandlers } from "../../src/api/handlers.js";
import { ControlServer } from "../../src/api/server.js";
import {
  type Args,
  commandWords,
  type Handlers,
  usageOf,
  VERBS,
  type VerbName,
  type VerbSpec,
} from "../../src/api/verbs.js";
import { buildProgram } from "../../src/cli/main.js";
import type { PeerSpec } from "../../src/dataplane/dataplane.js";
import {
  Fdb,
  Neigh6Table,
  NeighTable,
  type RouteSpec,
  RouteTable,
  RouteTable6,
} from "../../src/fdb/index.js";

const NAMES = Object.keys(VERBS) as VerbName[];

/** A value for every argument name and keyword the table uses. */
const SAMPLE: Record<string, string> = {
  mac: "02:00:00:00:00:01",
  ip: "10.244.1.0",
  prefix: "10.244.1.0/24",
  address: "198.18.0.2",
  dst: "198.18.0.2",
  lladdr: "02:00:00:00:00:01",
};

/** The words of a smallest valid CLI call of `name`. */
function sampleWords(name: VerbName): string[] {
  const spec: VerbSpec = VERBS[name];
  const words = spec.positional.map((p) => SAMPLE[p]);
  for (const k of spec.required ?? []) words.push(k, SAMPLE[k]);
  return words;
}

async function serve(
  t: { teardown: (fn: () => unknown) => void },
  handlers: Handlers,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-api-"));
  const path = join(dir, "ctl.sock");
  const server = new ControlServer(path, handlers);
  await server.listen();
  t.teardown(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

t.test("every verb has a summary and a usage line naming all its words", async (t) => {
  t.ok(NAMES.length >= 14);
  for (const name of NAMES) {
    const spec: VerbSpec = VERBS[name];
    const usage = usageOf(name);
    t.ok(spec.summary.length > 0, `${name}: a summary`);
    t.ok(usage.startsWith(commandWords(name).join(" ")), `${name}: "${usage}"`);
    for (const k of Object.keys(spec.keywords)) {
      t.match(usage, new RegExp(`(^| |\\[)${k}( |\\]|$)`), `${name}: usage names ${k}`);
    }
    t.equal(usage.includes("--json"), !!spec.json, `${name}: --json in usage iff taken`);
    for (const k of spec.required ?? []) t.ok(k in spec.keywords, `${name}: ${k} is a keyword`);
  }
});

t.test("the CLI reaches every verb by its name, with the arguments the table names", async (t) => {
  const seen: [string, Args][] = [];
  const handlers = Object.fromEntries(
    NAMES.map((n) => [n, (a: Args) => void seen.push([n, a])]),
  ) as Handlers;
  const socket = await serve(t, handlers);
  /** The one request `vxtun WORDS` sent. */
  const cli = async (words: string[]) => {
    seen.length = 0;
    await buildProgram().parseAsync(["node", "vxtun", "--socket", socket, ...words]);
    t.equal(seen.length, 1, `vxtun ${words.join(" ")}: one request`);
    return seen[0];
  };
  for (const name of NAMES) {
    const [op] = await cli([...commandWords(name), ...sampleWords(name)]);
    t.equal(op, name, `... for ${name}`);
  }
  t.same(await cli(["stats"]), ["stats", {}], "no arguments where the verb takes none");
  t.same(await cli(["fdb", "show", "--json"]), ["fdb.show", { json: true }]);
  t.same(
    await cli(["route", "add", "10.244.2.0/24", "via", "10.244.2.0", "onlink", "mtu", "1400"]),
    ["route.add", { prefix: "10.244.2.0/24", via: "10.244.2.0", onlink: true, mtu: 1400 }],
  );
  t.same(
    await cli(["peer", "add", "198.18.0.3", "vtep-mac", "02:00:00:00:00:03"]),
    ["peer.add", { address: "198.18.0.3", vtepMac: "02:00:00:00:00:03" }],
    "vtep-mac → vtepMac",
  );
});

t.test("words are checked before anything is sent", async (t) => {
  t.throws(() => parseWords("fdb.add", []), /^missing MAC; usage: fdb add MAC dst IP$/);
  t.throws(
    () => parseWords("neigh.add", ["10.0.0.1"]),
    /^missing lladdr; usage: neigh add IP lladdr MAC$/,
  );
  t.throws(() => parseWords("fdb.add", ["02:00:00:00:00:01", "via", "x"]), /unexpected "via"/);
  t.throws(() => parseWords("route.add", ["10.0.0.0/8", "mtu"]), /"mtu" needs a value/);
  t.throws(() => parseWords("route.add", ["10.0.0.0/8", "mtu", "-1"]), /whole number, not "-1"/);
  t.throws(() => parseWords("neigh.del", ["10.0.0.1", "10.0.0.2"]), /unexpected "10.0.0.2"/);
});

t.test("the dataplane serves every verb but the agent's, on its tables", async (t) => {
  const calls: unknown[][] = [];
  const fdb = new Fdb({ dev: "vxtun0", vni: 1, dstPort: 4789, ageingMs: 0 });
  const target: ControlTarget = {
    fdb,
    neigh: new NeighTable({ dev: "vxtun0" }),
    routes: new RouteTable({ dev: "vxtun0" }),
    neigh6: new Neigh6Table({ dev: "vxtun0" }),
    routes6: new RouteTable6({ dev: "vxtun0" }),
    peers: new Map<string, PeerSpec>(),
    tablesChanged: () => void calls.push(["tablesChanged"]),
    addRoute: async (prefix: string, spec: RouteSpec) =>
      void calls.push(["addRoute", prefix, spec]),
    delRoute: async (prefix: string) => void calls.push(["delRoute", prefix]),
    addPeer: async (p: PeerSpec) => void calls.push(["addPeer", p]),
    delPeer: async (a: string) => void calls.push(["delPeer", a]),
    stats: { startedAt: Date.now() - 5000 },
    statsSnapshot: () => ({ counters: {} }),
    info: () => ({ name: "fake" }),
  };
  const handlers = dataplaneHandlers(target);
  t.same(
    Object.keys(handlers).sort(),
    NAMES.filter((n) => n !== "agent").sort(),
    "the dataplane's verbs are the table's but agent (the node agent adds that one)",
  );
  const socket = await serve(t, handlers);
  const call = (op: string, args: Record<string, unknown> = {}) => controlCall(socket, op, args);

  await call("fdb.add", { mac: "02:00:00:00:00:01", dst: "198.18.0.2" });
  t.same(calls.pop(), ["tablesChanged"], "a table edit reaches the queue workers");
  t.match(await call("fdb.show"), "02:00:00:00:00:01 dev vxtun0 dst 198.18.0.2");
  t.match(await call("fdb.show", { json: true }), [
    { mac: "02:00:00:00:00:01", dst: "198.18.0.2" },
  ]);
  await call("fdb.add", { mac: "00:00:00:00:00:00", dst: "198.18.0.3" });
  t.same([...fdb.floodList()].length, 1, "the all-zeros MAC appends a flood remote");
  await call("route.add", { prefix: "10.244.2.0/24", via: "10.244.2.0", onlink: true, mtu: 1400 });
  t.same(calls.pop(), [
    "addRoute",
    "10.244.2.0/24",
    { gateway: "10.244.2.0", onlink: true, remote: undefined, mtu: 1400 },
  ]);
  await call("peer.add", { address: "198.18.0.4", subnet: "10.244.4.0/24" });
  t.same(calls.pop(), [
    "addPeer",
    { address: "198.18.0.4", subnet: "10.244.4.0/24", vtepMac: undefined },
  ]);
  t.same(await call("info"), { name: "fake" });
  t.match(
    await call("stats"),
    { version: /^\d+\.\d+\.\d+/, uptimeSeconds: 5, counters: {} },
    "stats carries the version and the uptime",
  );
  // The family comes from the address, as with `ip neigh`.
  await call("neigh.add", { ip: "10.244.2.0", lladdr: "02:00:00:00:02:01" });
  await call("neigh.add", { ip: "fd00:0:0:2::", lladdr: "02:00:00:00:02:01" });
  t.equal(
    await call("neigh.show"),
    "10.244.2.0 dev vxtun0 lladdr 02:00:00:00:02:01 PERMANENT\n" +
      "fd00:0:0:2:: dev vxtun0 lladdr 02:00:00:00:02:01 PERMANENT\n",
    "neigh show lists both families",
  );
  await call("neigh.del", { ip: "fd00:0:0:2::" });
  t.equal(target.neigh6.size, 0, "an IPv6 neigh del reaches the IPv6 table");

  await t.rejects(
    call("neigh.add", { ip: "10.244.1.0" }),
    /^missing lladdr; usage: neigh add IP lladdr MAC$/,
  );
  await t.rejects(
    call("fdb.add", { mac: "02:00:00:00:00:01", dst: 5 }),
    /"dst" takes a non-empty string/,
  );
  await t.rejects(
    call("route.add", { prefix: "10.0.0.0/8", mtu: 1.5 }),
    /"mtu" takes a whole number/,
  );
  await t.rejects(call("stats", { verbose: true }), /unexpected "verbose"/);
  await t.rejects(
    call("fdb.del", { mac: "02:00:00:00:00:09" }),
    /02:00:00:00:00:09/,
    "table errors pass through",
  );
  await t.rejects(call("fdb.flush"), /unknown operation "fdb.flush"/);
  await t.rejects(call("agent"), /does not serve "agent"/);
});
