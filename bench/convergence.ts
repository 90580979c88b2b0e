// Control-plane convergence at scale: a lab of N agents (default 50, no pods); the bench
// writes a new node's lease into the store itself (so the start of the clock is exact),
// then watches every node's kernel (a netlink route dump per node namespace) until each
// has the route for the new subnet into its TUN, i.e. the peer is programmed. Then it
// deletes the lease and times the removal everywhere. R rounds, one store per run;
// results merge into bench/results/convergence.{json,md,png}. Needs root and
// `npm run build`: the agents run from dist/ (50 agents compiling TypeScript through tsx
// at once would measure tsx).
//   node --import tsx bench/convergence.ts [file|etcd] [nodes=50] [rounds=10]
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join, resolve } from "node:path";
import { renderChart } from "../src/bench/chart.js";
import { writeFileAtomic } from "../src/control/file-store.js";
import { parseIpv4 } from "../src/encap/addr.js";
import type * as LabModule from "../src/lab/lab.js";
import { netnsUnavailableReason } from "../src/lab/netns.js";
import { runOk } from "../src/system/exec.js";
import { Netlink } from "../src/system/netlink.js";

const POLL_MS = 5;
const TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** ms after `t0` at which each node's kernel has (want=true) or lacks the route. */
async function watch(nls: Netlink[], dst: number, want: boolean, t0: number): Promise<number[]> {
  const at: (number | undefined)[] = nls.map(() => undefined);
  for (;;) {
    const now = performance.now() - t0;
    nls.forEach((nl, i) => {
      if (at[i] !== undefined) return;
      const has = nl.routes().some((r) => r.dst === dst && r.len === 24);
      if (has === want) at[i] = now;
    });
    if (at.every((x) => x !== undefined)) return at as number[];
    if (now > TIMEOUT_MS) {
      throw new Error(`${at.filter((x) => x === undefined).length} nodes never saw the change`);
    }
    await sleep(POLL_MS);
  }
}

interface Round {
  join: number[];
  leave: number[];
  /** How long the write itself took (etcd: starting etcdctl in a namespace; counted in). */
  writeMs: number;
}

async function main(): Promise<void> {
  const why = netnsUnavailableReason();
  if (why) throw new Error(`bench/convergence.ts ${why}`);
  const store = (process.argv[2] ?? "file") as "file" | "etcd";
  if (store !== "file" && store !== "etcd") throw new Error("store: file or etcd");
  const nodes = Number(process.argv[3] ?? 50);
  const rounds = Number(process.argv[4] ?? 10);
  const { labUp, labDown } = (await import(
    resolve(import.meta.dirname, "../dist/lab/lab.js")
  )) as typeof LabModule;
  const name = `conv-${randomBytes(2).toString("hex")}`;
  const t0Up = performance.now();
  const lab = await labUp({
    name,
    nodes,
    pods: 0,
    store,
    onProgress: (m) => process.stderr.write(`\r${m.padEnd(60)}`),
  });
  const upS = (performance.now() - t0Up) / 1000;
  process.stderr.write("\n");
  const nls = lab.nodes.map((n) => new Netlink(n.ns));
  const out: Round[] = [];
  try {
    const rss = (await runOk(["ps", "-o", "rss=", "-p", lab.nodes.map((n) => n.pid).join(",")]))
      .split("\n")
      .filter(Boolean)
      .map((x) => Number(x) / 1024);
    const prefix = `/vxtun-lab-${name}/network`;
    const etcdIn = lab.nodes[0].ns;
    const etcdctl = (args: string[]) =>
      runOk(
        ["ip", "netns", "exec", etcdIn, "etcdctl", `--endpoints=${lab.etcd?.endpoint}`, ...args],
        { env: { ...process.env, ETCDCTL_API: "3" } as Record<string, string> },
      );
    const leaseFile = (key: string) => join(lab.dir, "store", "subnets", `${key}.json`);
    const put = async (subnet: string, value: object) => {
      const key = subnet.replace("/", "-");
      if (store === "etcd")
        await etcdctl(["put", `${prefix}/subnets/${key}`, JSON.stringify(value)]);
      else
        writeFileAtomic(
          leaseFile(key),
          JSON.stringify({ value, expiresAt: Date.now() + 3_600_000 }),
        );
    };
    const del = async (subnet: string) => {
      const key = subnet.replace("/", "-");
      if (store === "etcd") await etcdctl(["del", `${prefix}/subnets/${key}`]);
      else rmSync(leaseFile(key));
    };
    for (let k = 0; k < rounds; k++) {
      const subnet = `10.244.${200 + k}.0/24`;
      const dst = parseIpv4(`10.244.${200 + k}.0`) as number;
      const mac = `02:00:00:00:c8:${(k + 16).toString(16)}`;
      const value = {
        PublicIP: `198.18.0.${200 + k}`,
        BackendType: "vxlan",
        BackendData: { VNI: 1, VtepMAC: mac },
      };
      // Watching starts with the write, not after it: etcdctl's exit comes later than
      // its write, and the agents may well be done before it.
      let t0 = performance.now();
      let writeMs = 0;
      const [j] = await Promise.all([
        watch(nls, dst, true, t0),
        put(subnet, value).then(() => {
          writeMs = performance.now() - t0;
        }),
      ]);
      await sleep(200);
      t0 = performance.now();
      const [l] = await Promise.all([watch(nls, dst, false, t0), del(subnet)]);
      out.push({ join: j, leave: l, writeMs });
      process.stderr.write(
        `round ${k + 1}/${rounds}: join all ${Math.max(...j).toFixed(0)} ms, leave all ${Math.max(...l).toFixed(0)} ms\n`,
      );
      await sleep(200);
    }
    await report({ store, nodes, rounds: out, upS, rssMiB: rss });
  } finally {
    for (const nl of nls) nl.close();
    await labDown(name);
  }
}

interface StoreResult {
  store: "file" | "etcd";
  nodes: number;
  upS: number;
  rssMiB: number[];
  rounds: Round[];
}

async function report(r: StoreResult): Promise<void> {
  const dir = resolve(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const jsonFile = join(dir, "convergence.json");
  const prev = existsSync(jsonFile)
    ? (JSON.parse(readFileSync(jsonFile, "utf8")) as { results: StoreResult[] }).results
    : [];
  const results = [...prev.filter((p) => p.store !== r.store), r].sort((a, b) =>
    a.store.localeCompare(b.store),
  );
  const meta = { kernel: release(), node: process.version, date: new Date().toISOString() };
  writeFileSync(jsonFile, `${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  const f = (x: number) => x.toFixed(0);
  const lines = [
    "Convergence: from a lease written to the store to every node's kernel route (join), and from its deletion to the route gone everywhere (leave); ms",
    "",
    "| store | nodes | rounds | join: all nodes p50 | join: all nodes max | join: per node p50 | leave: all nodes p50 | leave: all nodes max | agents up (s) | RSS per agent (MiB, mean) | store write p50 (counted in) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of results) {
    const joinAll = s.rounds.map((x) => Math.max(...x.join));
    const leaveAll = s.rounds.map((x) => Math.max(...x.leave));
    const joinEach = s.rounds.flatMap((x) => x.join);
    const rss = s.rssMiB.reduce((a, b) => a + b, 0) / s.rssMiB.length;
    lines.push(
      `| ${s.store} | ${s.nodes} | ${s.rounds.length} | ${f(pct(joinAll, 50))} | ${f(Math.max(...joinAll))} | ${f(pct(joinEach, 50))} | ${f(pct(leaveAll, 50))} | ${f(Math.max(...leaveAll))} | ${s.upS.toFixed(0)} | ${rss.toFixed(0)} | ${f(
        pct(
          s.rounds.map((x) => x.writeMs ?? 0),
          50,
        ),
      )} |`,
    );
  }
  lines.push(
    "",
    `Linux ${meta.kernel}, Node ${meta.node}, ${meta.date.slice(0, 10)}: \`node --import tsx bench/convergence.ts STORE NODES ROUNDS\``,
  );
  const md = lines.join("\n");
  writeFileSync(join(dir, "convergence.md"), `${md}\n`);
  console.log(md);
  const values = results.flatMap((s) =>
    s.rounds.flatMap((x, round) => [
      ...x.join.map((ms) => ({ store: s.store, event: "join", round, ms })),
      ...x.leave.map((ms) => ({ store: s.store, event: "leave", round, ms })),
    ]),
  );
  const { png } = await renderChart({
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Time until each of ${r.nodes} nodes has programmed (join) or removed (leave) a peer`,
    data: { values },
    width: 260,
    height: 220,
    mark: { type: "tick", opacity: 0.5 },
    encoding: {
      column: { field: "store", type: "nominal", title: "store" },
      x: { field: "event", type: "nominal", title: null },
      y: { field: "ms", type: "quantitative", title: "ms after the store write" },
      color: { field: "event", type: "nominal", legend: null },
    },
  });
  writeFileSync(join(dir, "convergence.png"), png);
}

await main();
