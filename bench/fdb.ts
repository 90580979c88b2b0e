// Forwarding-table microbenchmarks: route LPM with 10,000 routes (IPv4 and IPv6), FDB lookup and
// learn-refresh with 10,000 MACs, neighbour lookups, and allocation over 10 M lookups.
// Run: node --import tsx bench/fdb.ts   (prints a Markdown table)
//
// Each benchmark op is a batch of BATCH lookups over a pre-generated key array, so the
// harness's per-op overhead is amortised and figures are per lookup. The per-length
// hash-map LPM ("hash LPM") is the alternative considered in src/fdb/lpm.ts, kept here
// only so the choice stays measured.

import { PerformanceObserver } from "node:perf_hooks";
import Benchmark from "benchmark";
import { prefixMask } from "../src/encap/addr.js";
import { Fdb } from "../src/fdb/fdb.js";
import { NeighTable } from "../src/fdb/neigh.js";
import { RouteTable } from "../src/fdb/route.js";
import { RouteTable6 } from "../src/fdb/route6.js";

const N = 10_000;
const BATCH = 4096;

let seed = 0x5eed;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

// --- routes: 10,000 random /16-/32 prefixes
const routes = new RouteTable();
const prefixes: { addr: number; len: number }[] = [];
while (routes.size < N) {
  const len = 16 + (rnd() % 17);
  const addr = (rnd() & prefixMask(len)) >>> 0;
  if (routes.get(addr, len) !== undefined) continue;
  routes.add(addr, len, { gateway: addr, onlink: true, mtu: 1450 });
  prefixes.push({ addr, len });
}
// Half inside a random prefix (hits), half uniformly random (nearly all misses).
const routeKeys = new Uint32Array(BATCH);
for (let i = 0; i < BATCH; i++) {
  const p = prefixes[rnd() % prefixes.length];
  routeKeys[i] = i % 2 === 0 ? (p.addr | (rnd() & ~prefixMask(p.len))) >>> 0 : rnd();
}
let routeHits = 0;
for (const k of routeKeys) if (routes.lookup(k) !== undefined) routeHits++;

// --- IPv6 routes, 10,000 each way; keys are packets' destination fields (16 bytes each
// in one buffer), half inside a prefix, half random.
// Pod-network shape: 9,000 /64 node subnets of one /48 and 1,000 /128 hosts in them.
// Worst shape: random /48-/128 prefixes under fd00::/8, sharing little of their paths.
function table6(pick: () => { addr: Uint8Array; len: number }) {
  const table = new RouteTable6();
  const ps: { addr: Uint8Array; len: number }[] = [];
  while (table.size < N) {
    const { addr, len } = pick();
    for (let bit = len; bit < 128; bit++) addr[bit >>> 3] &= ~(0x80 >>> (bit & 7));
    if (table.get(addr, len) !== undefined) continue;
    table.add(addr, len, { gateway: addr, onlink: true, mtu: 1430 });
    ps.push({ addr, len });
  }
  const keys = new Uint8Array(BATCH * 16);
  for (let i = 0; i < BATCH; i++) {
    for (let b = 0; b < 16; b++) keys[i * 16 + b] = rnd() & 0xff;
    if (i % 2 === 0) {
      const p = ps[rnd() % ps.length];
      keys.set(p.addr.subarray(0, Math.ceil(p.len / 8)), i * 16);
    }
  }
  return { table, keys };
}
/** 16 bytes: `head`, then random. */
const randomAfter = (head: number[]): Uint8Array => {
  const a = new Uint8Array(16);
  a.set(head);
  for (let i = head.length; i < 16; i++) a[i] = rnd() & 0xff;
  return a;
};
const pod6 = table6(() => {
  const a = randomAfter([0xfd, 0, 0, 0x10, 0x02, 0x44]);
  return { addr: a, len: rnd() % 10 === 0 ? 128 : 64 };
});
const wide6 = table6(() => ({ addr: randomAfter([0xfd]), len: 48 + (rnd() % 81) }));

/** The alternative: one Map per prefix length, probed over the lengths present. */
class HashLpm {
  private readonly maps: Map<number, number>[] = [];
  private lens = new Int32Array(0);
  private masks = new Int32Array(0);
  constructor(ps: { addr: number; len: number }[]) {
    for (let l = 0; l <= 32; l++) this.maps.push(new Map());
    ps.forEach((p, i) => {
      this.maps[p.len].set(p.addr | 0, i + 1);
    });
    const present = [];
    for (let l = 32; l >= 0; l--) if (this.maps[l].size > 0) present.push(l);
    this.lens = Int32Array.from(present);
    this.masks = Int32Array.from(present, (l) => prefixMask(l) | 0);
  }
  find(ip: number): number {
    for (let i = 0; i < this.lens.length; i++) {
      const id = this.maps[this.lens[i]].get(ip & this.masks[i]);
      if (id !== undefined) return id;
    }
    return 0;
  }
}
const hashLpm = new HashLpm(prefixes);

// --- FDB: 10,000 learned MACs (locally administered, random)
const fdb = new Fdb({ clock: () => 0 });
const macs = new Float64Array(N);
for (let i = 0; i < N; i++) {
  const mac = 0x020000000000 + (rnd() % 0x10000) * 0x100000000 + rnd();
  macs[i] = mac;
  fdb.learn(mac, 0xc6120000 + (i % 250), 0);
}
const macKeys = new Float64Array(BATCH);
const knownMacs = new Float64Array(BATCH);
const knownRemotes = new Uint32Array(BATCH);
for (let i = 0; i < BATCH; i++) {
  const j = rnd() % N;
  // 1 in 8 unknown (would be flooded)
  macKeys[i] = i % 8 === 7 ? 0x060000000000 + rnd() : macs[j];
  knownMacs[i] = macs[j];
  knownRemotes[i] = 0xc6120000 + (j % 250);
}

// --- neighbours: 10,000 entries, 256 permanent VTEPs plus learned pods
const neigh = new NeighTable({ clock: () => 0, maxEntries: 0 });
const neighIps = new Uint32Array(N);
for (let i = 0; i < N; i++) {
  const a = (0x0af40000 + i) >>> 0;
  neighIps[i] = a;
  if (i < 256) neigh.add(a, 0x020000000000 + i);
  else neigh.confirm(a, 0x020000000000 + i, 0);
}
const neighKeys = new Uint32Array(BATCH);
for (let i = 0; i < BATCH; i++) neighKeys[i] = neighIps[rnd() % N];

// Results go to a typed-array sink once per batch: a module-level `let` holding a
// non-small-integer would box a fresh HeapNumber on every write and show up as garbage.
const sink = new Float64Array(2);
let now = 1;

function routeBatch(): void {
  let n = 0;
  for (let i = 0; i < BATCH; i++) if (routes.lookup(routeKeys[i]) !== undefined) n++;
  sink[0] += n;
}
function route6Batch(t: { table: RouteTable6; keys: Uint8Array }): () => void {
  const { table, keys } = t;
  return () => {
    let n = 0;
    for (let i = 0; i < BATCH; i++) if (table.lookup(keys, i * 16) !== undefined) n++;
    sink[0] += n;
  };
}
function hashBatch(): void {
  let n = 0;
  for (let i = 0; i < BATCH; i++) n += hashLpm.find(routeKeys[i]);
  sink[0] += n;
}
function fdbLookupBatch(): void {
  now += 0.5;
  let n = 0;
  for (let i = 0; i < BATCH; i++) if (fdb.lookup(macKeys[i], now) !== undefined) n++;
  sink[0] += n;
}
function fdbLearnBatch(): void {
  now += 0.5;
  let n = 0;
  // Only the known MACs: a refresh of an existing entry, the per-packet receive case.
  for (let i = 0; i < BATCH; i++) n += fdb.learn(knownMacs[i], knownRemotes[i], now);
  sink[0] += n;
}
function neighBatch(): void {
  now += 0.5;
  let n = 0;
  for (let i = 0; i < BATCH; i++) if (neigh.resolve(neighKeys[i], now) >= 0) n++;
  sink[0] += n;
}

const cases: [string, () => void][] = [
  ["route lookup (16-8-8 trie, 10k routes)", routeBatch],
  ["route lookup (hash-per-length LPM, for comparison)", hashBatch],
  ["IPv6 route lookup (16-8-...-8 trie, 10k pod-network routes)", route6Batch(pod6)],
  ["IPv6 route lookup (same trie, 10k random /48-/128 routes)", route6Batch(wide6)],
  ["FDB lookup (10k MACs, 1/8 unknown)", fdbLookupBatch],
  ["FDB learn-refresh (10k MACs)", fdbLearnBatch],
  ["neighbour resolve (10k entries)", neighBatch],
];

const rows: string[] = [];
const suite = new Benchmark.Suite();
for (const [name, fn] of cases) suite.add(name, fn, { maxTime: 1.5, minSamples: 5 });
suite.on("cycle", (ev: Benchmark.Event) => {
  const b = ev.target as unknown as Benchmark;
  const perSec = (b.hz ?? 0) * BATCH;
  const ns = 1e9 / perSec;
  const rme = b.stats?.rme ?? 0;
  rows.push(
    `| ${b.name} | ${(perSec / 1e6).toFixed(1)} M | ${ns.toFixed(1)} ns | ±${rme.toFixed(1)} % |`,
  );
});
suite.run();

// --- allocation over 10 M lookups of each kind: GC events and heap growth
let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function allocation(name: string, fn: () => void): Promise<string> {
  const batches = Math.ceil(10_000_000 / BATCH);
  fn(); // warm
  await tick();
  gcs = 0;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < batches; i++) fn();
  const after = process.memoryUsage().heapUsed;
  await tick(); // let the observer deliver
  const kb = ((after - before) / 1024).toFixed(0);
  return `| ${name} | ${((batches * BATCH) / 1e6).toFixed(1)} M | ${gcs} | ${kb} KB |`;
}

obs.observe({ entryTypes: ["gc"] });
const allocRows: string[] = [];
for (const [name, fn] of cases) allocRows.push(await allocation(name, fn));
obs.disconnect();

const mb = (n: number): string => (n / 1048576).toFixed(1);
console.log(`Node ${process.version}, ${N} entries per table, batches of ${BATCH} lookups.`);
console.log(
  `Route keys: ${routeHits}/${BATCH} hits; trie nodes: ${(routes as unknown as { lpm: { nodes: number } }).lpm.nodes}; heap used after setup: ${mb(process.memoryUsage().heapUsed)} MB, array buffers ${mb(process.memoryUsage().arrayBuffers)} MB.\n`,
);
const trie = (t: { table: RouteTable6 }) => (t.table as unknown as { lpm: { bytes: number } }).lpm;
console.log(
  `IPv6 trie memory: ${mb(trie(pod6).bytes)} MB pod-network shape, ${mb(trie(wide6).bytes)} MB random shape.\n`,
);
console.log("| operation | per second | per lookup | error |");
console.log("|---|---|---|---|");
for (const r of rows) console.log(r);
console.log("\n| allocation check | lookups | GC events | heap growth |");
console.log("|---|---|---|---|");
for (const r of allocRows) console.log(r);
if (sink[0] === 0.5) console.log(sink[0]);
