// The soak's pure parts: the seeded schedule (replayable, every fault kind in a short
// run) and the ping analysis that turns replies into outages.
import t from "tap";
import { analysePings, PING_INTERVAL_S, percentile } from "../../src/lab/soak-probes.js";
import { buildReport } from "../../src/lab/soak-report.js";
import { FAULT_KINDS, makeSchedule, prng } from "../../src/lab/soak-schedule.js";

t.test("same seed, same schedule; another seed, another", (t) => {
  const a = makeSchedule({ seed: 7, durationMs: 120_000 });
  t.same(makeSchedule({ seed: 7, durationMs: 120_000 }), a, "replayable");
  t.notSame(makeSchedule({ seed: 8, durationMs: 120_000 }), a);
  t.ok(
    a.every((f, i) => i === 0 || f.at >= a[i - 1].at),
    "in time order",
  );
  t.ok(
    a.every((f) => f.at >= 5000 && f.at < 120_000),
    "after the warm-up, within the run",
  );
  t.end();
});

t.test("a 2-minute schedule holds every fault kind; outages last 3-12 s", (t) => {
  for (const seed of [1, 2, 3, 42, 12345]) {
    const s = makeSchedule({ seed, durationMs: 120_000 });
    const kinds = new Set(s.map((f) => f.kind));
    t.same(
      [...kinds].sort(),
      [...FAULT_KINDS].sort(),
      `seed ${seed}: all ${FAULT_KINDS.length} kinds`,
    );
    for (const f of s.filter((x) => x.kind === "store-outage")) {
      t.ok(f.durationMs! >= 3000 && f.durationMs! <= 12_000, `outage of ${f.durationMs} ms`);
    }
  }
  t.end();
});

t.test("prng: uniform enough in [0, 1)", (t) => {
  const r = prng(99);
  const xs = Array.from({ length: 10_000 }, r);
  t.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  t.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  t.end();
});

t.test("pings: runs of lost requests become outages with interpolated starts", (t) => {
  const step = PING_INTERVAL_S * 1000;
  const seen = new Map<number, number>();
  // Replies for 1..10, 21..30 (10 lost in between), then 31..35 and nothing after (5 trailing).
  for (let s = 1; s <= 35; s++) if (s <= 10 || s > 20) seen.set(s, 1000 + s * step);
  const r = analysePings("a>b", 40, seen);
  t.equal(r.sent, 40);
  t.equal(r.received, 25);
  t.equal(r.outages.length, 2);
  const [mid, tail] = r.outages;
  t.equal(mid.lost, 10);
  t.equal(mid.start, 1000 + 11 * step, "first lost request interpolated");
  t.equal(mid.end, 1000 + 21 * step, "ends with the next reply");
  t.equal(tail.lost, 5);
  t.equal(tail.start, 1000 + 36 * step);
  t.same(
    analysePings(
      "x",
      3,
      new Map([
        [1, 5],
        [2, 6],
        [3, 7],
      ]),
    ).outages,
    [],
    "no loss, no outage",
  );
  t.end();
});

t.test("percentile: nearest rank", (t) => {
  t.equal(percentile([], 50), undefined);
  t.equal(percentile([5, 1, 3], 50), 3);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  t.equal(percentile([1, 2, 3, 4], 100), 4);
  t.end();
});

t.test("memory is judged from medians after the first minute, flat or growing", (t) => {
  const t0 = 1_000_000;
  const samples = (grow: number) =>
    Array.from({ length: 14 }, (_, i) => ({
      at: t0 + i * 10_000,
      node: "n1",
      pid: 1,
      rssBytes: (100 + (i % 2) * 5 + i * grow) * 2 ** 20,
      heapUsedBytes: (20 + (i % 3) * 4 + i * grow) * 2 ** 20,
    }));
  const report = (memory: ReturnType<typeof samples>) =>
    buildReport({
      options: { minutes: 2, seed: 1, store: "file", lab: "x" },
      t0,
      load: [
        [1, 1, 1],
        [1, 1, 1],
      ],
      faults: [],
      restarts: [],
      pings: [],
      longLived: [],
      audits: [],
      memory,
      leasesLost: 0,
      crashes: [],
      problems: [],
      cni: { addFailed: 0, unreachable: 0 },
    });
  const flat = report(samples(0));
  t.ok(flat.memory[0].growth, "a 2-minute process is judged");
  t.ok(Math.abs(flat.memory[0].growth!.heapMiB!) <= 4, "GC sawtooth is not growth");
  t.ok(flat.goals.ok, `flat memory passes ${flat.goals.failed}`);
  const leak = report(samples(5));
  t.ok(
    leak.memory[0].growth!.heapMiB! > 8,
    `5 MiB per sample is growth (${leak.memory[0].growth!.heapMiB})`,
  );
  t.match(leak.goals.failed.join(), /memory grew/);
  t.end();
});
