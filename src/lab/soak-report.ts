// The soak's report: outages attributed to the fault that caused them, restart-to-
// forwarding times, the audit's leaks and leftovers, memory per agent, and the goals
// checked in one place (the test and the CLI exit code both read `goals`).
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { renderChart, type VegaLiteSpec } from "../bench/chart.js";
import { VERSION } from "../cli/version.js";
import type { NodeAudit } from "./soak-check.js";
import {
  type MemorySample,
  type Outage,
  PING_INTERVAL_S,
  type PingResult,
  percentile,
} from "./soak-probes.js";
import { FAULT_KINDS, type FaultKind } from "./soak-schedule.js";

export interface FaultRecord {
  kind: FaultKind;
  node?: string;
  /** Epoch ms: injected, and done (agent answering again, store back, node joined). */
  start: number;
  end: number;
  note?: string;
}

export interface RestartRecord {
  node: string;
  kind: FaultKind;
  signal: string;
  tKill: number;
  tExit: number;
  tSpawn: number;
  tReady: number;
  /** CPU the new process had used when its control socket answered (load-independent). */
  cpuMs?: number;
}

export interface ReportInput {
  options: { minutes: number; seed: number; store: string; mode?: string; lab: string };
  t0: number;
  load: number[][];
  faults: FaultRecord[];
  restarts: RestartRecord[];
  pings: PingResult[];
  longLived: { name: string; node: string }[];
  audits: NodeAudit[];
  memory: MemorySample[];
  leasesLost: number;
  crashes: string[];
  problems: string[];
  cni: Record<string, number>;
}

/** Goals of issue #20. */
export const GOALS = {
  restartToForwardingMs: 1000,
  /** Growth after the first minute of a process that counts as noise. */
  heapGrowthBytes: 8 << 20,
  rssGrowthBytes: 24 << 20,
  /** A process must live this long for its growth to be judged. */
  memoryJudgedAfterMs: 60_000,
};

/** An outage belongs to the latest fault whose window (+3 s after it ended) holds its start. */
const AFTER_MS = 3000;

function attribute(o: Outage, faults: FaultRecord[]): FaultKind | "unexplained" {
  let best: FaultRecord | undefined;
  for (const f of faults) {
    if (f.start - 200 <= o.start && o.start <= (f.end || f.start) + AFTER_MS) {
      if (!best || f.start > best.start) best = f;
    }
  }
  return best?.kind ?? "unexplained";
}

/**
 * From the supervisor's restart (the new process spawned) to the node forwarding pod
 * traffic again: for each ping pair through the node, the end of the outage around the
 * restart, minus the spawn time (0 if traffic never stopped after the spawn). The worst
 * pair counts.
 */
function toForwarding(
  r: RestartRecord,
  pings: PingResult[],
  through: string[],
): number | undefined {
  const mine = pings.filter((p) => through.some((pod) => p.pair.split(">").includes(pod)));
  if (mine.length === 0) return undefined;
  let worst = 0;
  for (const p of mine) {
    for (const o of p.outages) {
      // The outage the stop began (it starts before the new agent answered).
      if (o.start >= r.tKill - 200 && o.start <= r.tReady && o.end > r.tSpawn) {
        worst = Math.max(worst, o.end - r.tSpawn);
      }
    }
  }
  return worst;
}

const mib = (b: number | undefined) =>
  b === undefined ? undefined : Math.round((b / 2 ** 20) * 10) / 10;

export function buildReport(i: ReportInput) {
  const faultsByKind: Record<string, number> = {};
  for (const k of FAULT_KINDS) faultsByKind[k] = 0;
  for (const f of i.faults) faultsByKind[f.kind]++;

  const outages = i.pings.flatMap((p) =>
    // At least the requests lost times the interval: a reply that overtook another
    // (same millisecond) would make a lost request look like a 0 ms outage.
    p.outages.map((o) => ({
      ...o,
      kind: attribute(o, i.faults),
      ms: Math.max(o.end - o.start, o.lost * PING_INTERVAL_S * 1000),
    })),
  );
  const perKind: Record<string, { outages: number; lost: number; longestMs: number }> = {};
  for (const k of [...FAULT_KINDS, "unexplained"])
    perKind[k] = { outages: 0, lost: 0, longestMs: 0 };
  for (const o of outages) {
    const k = perKind[o.kind];
    k.outages++;
    k.lost += o.lost;
    k.longestMs = Math.max(k.longestMs, o.ms);
  }
  const sent = i.pings.reduce((s, p) => s + p.sent, 0);
  const received = i.pings.reduce((s, p) => s + p.received, 0);

  const restarts = i.restarts.map((r) => {
    const pods = i.longLived.filter((p) => p.node === r.node).map((p) => p.name);
    return {
      ...r,
      at: Math.round((r.tKill - i.t0) / 100) / 10,
      stopMs: r.tExit - r.tKill,
      toControlMs: r.tReady - r.tSpawn,
      toForwardingMs: toForwarding(r, i.pings, pods),
    };
  });
  const fwd = restarts.map((r) => r.toForwardingMs).filter((x): x is number => x !== undefined);
  const ctl = restarts.map((r) => r.toControlMs);
  const cpu = restarts.map((r) => r.cpuMs).filter((x): x is number => x !== undefined);

  const byPid = new Map<number, MemorySample[]>();
  for (const m of i.memory) byPid.set(m.pid, [...(byPid.get(m.pid) ?? []), m]);
  const median = (xs: number[]) => percentile(xs, 50);
  const memory = [...byPid.values()].map((ms) => {
    const first = ms[0];
    const last = ms[ms.length - 1];
    // Medians over a window, not single samples: the heap swings by a young generation
    // between collections. "After the first minute": the window (up to a minute) that
    // starts then; "end": the same length at the end of the process's life.
    const from = first.at + GOALS.memoryJudgedAfterMs;
    const w = Math.min(60_000, (last.at - from) / 2);
    const early = ms.filter((m) => m.at >= from - 5000 && m.at < from + w);
    const late = ms.filter((m) => m.at > last.at - w);
    const some = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined);
    const win = (w: MemorySample[]) => ({
      rssMiB: mib(median(w.map((m) => m.rssBytes))),
      heapMiB: mib(median(some(w.map((m) => m.heapUsedBytes)))),
      oldSpaceMiB: mib(median(some(w.map((m) => m.oldSpaceBytes)))),
    });
    const judged = w >= 20_000 && early.length > 0 && late.length > 0;
    const a = win(early);
    const b = win(late);
    return {
      node: first.node,
      pid: first.pid,
      minutes: Math.round(((last.at - first.at) / 60_000) * 10) / 10,
      start: { rssMiB: mib(first.rssBytes), heapMiB: mib(first.heapUsedBytes) },
      afterFirstMinute: early.length ? a : undefined,
      end: b,
      growth: judged
        ? {
            rssMiB: Math.round(((b.rssMiB ?? 0) - (a.rssMiB ?? 0)) * 10) / 10,
            heapMiB: Math.round(((b.heapMiB ?? 0) - (a.heapMiB ?? 0)) * 10) / 10,
            // Judged on the old space where sampled (the young generation is a sawtooth).
            oldSpaceMiB:
              a.oldSpaceMiB === undefined || b.oldSpaceMiB === undefined
                ? undefined
                : Math.round((b.oldSpaceMiB - a.oldSpaceMiB) * 10) / 10,
          }
        : undefined,
    };
  });

  const sum = (f: (a: NodeAudit) => string[]) => i.audits.reduce((s, a) => s + f(a).length, 0);
  const leftovers = {
    veths: sum((a) => a.leftoverVeths),
    kernelRoutes: sum((a) => a.leftoverKernelRoutes),
    routes: sum((a) => a.leftoverRoutes),
    fdb: sum((a) => a.leftoverFdb),
    neighbours: sum((a) => a.leftoverNeigh),
  };
  const leakedAddresses = sum((a) => a.leakedAddresses);
  const missing = sum((a) => a.missing);

  const failed: string[] = [];
  if (i.crashes.length) failed.push(`${i.crashes.length} process crash(es)`);
  if (leakedAddresses) failed.push(`${leakedAddresses} leaked address(es)`);
  const left = Object.values(leftovers).reduce((a, b) => a + b, 0);
  if (left) failed.push(`${left} leftover link(s)/route(s)/entries`);
  if (missing) failed.push(`${missing} missing entries`);
  if (i.leasesLost) failed.push(`${i.leasesLost} lease(s) lost`);
  const slow = fwd.filter((x) => x > GOALS.restartToForwardingMs).length;
  if (slow)
    failed.push(`${slow} restart(s) slower than ${GOALS.restartToForwardingMs} ms to forwarding`);
  for (const m of memory) {
    const g = m.growth;
    if (!g) continue;
    const heap = g.oldSpaceMiB ?? g.heapMiB;
    if (heap * 2 ** 20 > GOALS.heapGrowthBytes || g.rssMiB * 2 ** 20 > GOALS.rssGrowthBytes)
      failed.push(`${m.node} (pid ${m.pid}) memory grew: rss +${g.rssMiB} MiB, heap +${heap} MiB`);
  }

  if (i.cni.addFailed || i.cni.unreachable)
    failed.push(
      `${i.cni.addFailed} CNI ADD failure(s), ${i.cni.unreachable} new pod(s) unreachable`,
    );

  let commit = "";
  try {
    commit = readFileSync(join(import.meta.dirname, "../../dist/COMMIT"), "utf8").trim();
  } catch {
    // running from a checkout without a build
  }
  return {
    version: VERSION,
    commit,
    date: new Date(i.t0).toISOString(),
    options: i.options,
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      kernel: release(),
      node: process.version,
      loadavgStart: i.load[0].map((x) => Math.round(x * 100) / 100),
      loadavgEnd: i.load[1].map((x) => Math.round(x * 100) / 100),
    },
    faults: faultsByKind,
    ping: {
      pairs: i.pings.map((p) => p.pair),
      intervalMs: 50,
      sent,
      received,
      lossPercent: sent ? Math.round(((sent - received) / sent) * 10000) / 100 : 0,
      perKind,
    },
    restarts: {
      count: restarts.length,
      toForwardingMs: {
        p50: percentile(fwd, 50),
        p99: percentile(fwd, 99),
        max: percentile(fwd, 100),
        n: fwd.length,
      },
      toControlSocketMs: { p50: percentile(ctl, 50), p99: percentile(ctl, 99) },
      cpuMsToControlSocket: { p50: percentile(cpu, 50), p99: percentile(cpu, 99) },
      list: restarts.map(({ tKill, tExit, tSpawn, tReady, ...r }) => r),
    },
    leakedAddresses,
    leftovers,
    missing,
    leasesLost: i.leasesLost,
    crashes: i.crashes,
    cni: i.cni,
    memory,
    audits: i.audits,
    problems: i.problems,
    memorySamples: i.memory.map((m) => ({
      at: Math.round((m.at - i.t0) / 1000),
      node: m.node,
      pid: m.pid,
      rssMiB: mib(m.rssBytes),
      heapMiB: mib(m.heapUsedBytes),
      oldSpaceMiB: mib(m.oldSpaceBytes),
    })),
    outages: outages.map((o) => ({
      at: Math.round((o.start - i.t0) / 100) / 10,
      pair: o.pair,
      kind: o.kind,
      ms: o.ms,
      lost: o.lost,
    })),
    faultLog: i.faults.map((f) => ({
      at: Math.round((f.start - i.t0) / 100) / 10,
      kind: f.kind,
      node: f.node,
      ms: (f.end || f.start) - f.start,
      note: f.note,
    })),
    goals: { ok: failed.length === 0, failed },
  };
}
export type SoakReport = ReturnType<typeof buildReport>;

export function formatReport(r: SoakReport): string {
  const lines = [
    `soak: ${r.options.minutes} min, seed ${r.options.seed}, store ${r.options.store}, load ${r.machine.loadavgStart[0]} -> ${r.machine.loadavgEnd[0]}`,
    "",
    "fault                 count  outages  lost  longest ms",
  ];
  for (const [k, n] of Object.entries({ ...r.faults, unexplained: 0 })) {
    const p = r.ping.perKind[k];
    lines.push(
      `${k.padEnd(22)}${String(n).padStart(5)}${String(p.outages).padStart(9)}${String(p.lost).padStart(6)}${String(p.longestMs).padStart(12)}`,
    );
  }
  const f = r.restarts.toForwardingMs;
  lines.push(
    "",
    `ping: ${r.ping.sent} sent, ${r.ping.received} received (${r.ping.lossPercent} % lost)`,
    `agent restarts: ${r.restarts.count}; restart to forwarding p50 ${f.p50 ?? "-"} ms, p99 ${f.p99 ?? "-"} ms (n=${f.n}); control socket p50 ${r.restarts.toControlSocketMs.p50 ?? "-"} ms, after ${r.restarts.cpuMsToControlSocket.p50 ?? "-"} ms of CPU`,
    `leaked addresses ${r.leakedAddresses}; leftovers ${JSON.stringify(r.leftovers)}; missing ${r.missing}; leases lost ${r.leasesLost}; crashes ${r.crashes.length}`,
    `CNI: ${JSON.stringify(r.cni)}`,
    "memory (MiB, start -> after 1 min -> end):",
  );
  for (const m of r.memory.filter((x) => x.minutes >= 1)) {
    lines.push(
      `  ${m.node.padEnd(4)} pid ${String(m.pid).padEnd(7)} ${m.minutes} min  rss ${m.start.rssMiB} -> ${m.afterFirstMinute?.rssMiB ?? "-"} -> ${m.end.rssMiB}  heap ${m.start.heapMiB} -> ${m.afterFirstMinute?.heapMiB ?? "-"} -> ${m.end.heapMiB}`,
    );
  }
  if (r.problems.length) lines.push("problems:", ...r.problems.slice(0, 30).map((p) => `  ${p}`));
  lines.push("", r.goals.ok ? "goals: all met" : `goals FAILED: ${r.goals.failed.join("; ")}`);
  return lines.join("\n");
}

/**
 * Top: every outage of a long-lived pod pair over time (log ms), coloured by the fault it
 * followed, with a tick per disruptive fault. Bottom: each agent process's RSS and heap.
 */
export function soakChart(r: SoakReport): VegaLiteSpec {
  const disruptive = r.faultLog.filter(
    (f) => !f.kind.startsWith("cni-") || f.kind === "cni-add-agent-killed",
  );
  // Memory of n1's agent, the one process that lives the whole run (the others restart
  // every minute or two: their lines would only show start-ups).
  const mem = r.memorySamples
    .filter((m) => m.node === "n1")
    .flatMap((m) => [
      { at: m.at / 60, node: m.node, pid: m.pid, what: "RSS", mib: m.rssMiB },
      ...(m.heapMiB === undefined
        ? []
        : [{ at: m.at / 60, node: m.node, pid: m.pid, what: "V8 heap used", mib: m.heapMiB }]),
      ...(m.oldSpaceMiB === undefined
        ? []
        : [{ at: m.at / 60, node: m.node, pid: m.pid, what: "V8 old space", mib: m.oldSpaceMiB }]),
    ]);
  const x = {
    field: "at",
    type: "quantitative" as const,
    title: "minutes into the soak",
    scale: { domain: [0, r.options.minutes] },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `vxtun lab soak: ${r.options.minutes} min, seed ${r.options.seed}, store ${r.options.store}, load ${r.machine.loadavgStart[0]}–${r.machine.loadavgEnd[0]} on ${r.machine.cpus} CPUs`,
    resolve: { scale: { color: "independent" }, legend: { color: "independent" } },
    vconcat: [
      {
        width: 800,
        height: 260,
        title: "pod-to-pod ping outages (20 echo requests/s per pair)",
        layer: [
          {
            data: { values: disruptive.map((f) => ({ ...f, at: f.at / 60 })) },
            // A faint vertical line per disruptive fault, in its colour.
            mark: { type: "rule", opacity: 0.25 },
            encoding: { x, color: { field: "kind", type: "nominal" } },
          },
          {
            // Clamped to the axis' floor (a log scale has no 0).
            data: {
              values: r.outages.map((o) => ({ ...o, at: o.at / 60, ms: Math.max(o.ms, 20) })),
            },
            mark: { type: "point", filled: true, size: 40 },
            encoding: {
              x,
              y: {
                field: "ms",
                type: "quantitative",
                scale: { type: "log", domain: [20, 20000] },
                title: "outage (ms, log)",
              },
              color: { field: "kind", type: "nominal", title: "fault" },
              shape: { field: "pair", type: "nominal", title: "pair" },
            },
          },
        ],
      },
      {
        width: 800,
        height: 160,
        title: "n1's agent, never restarted: memory (MiB)",
        data: { values: mem },
        mark: { type: "line", point: { size: 8 } },
        encoding: {
          x,
          y: { field: "mib", type: "quantitative", title: "MiB" },
          color: { field: "node", type: "nominal", scale: { scheme: "dark2" } },
          strokeDash: { field: "what", type: "nominal", title: "" },
          detail: { field: "pid", type: "nominal" },
        },
      },
    ],
  } as VegaLiteSpec;
}

/** soak.json, soak.md (the text report) and soak.png in `dir`. */
export async function writeReport(r: SoakReport, dir: string): Promise<void> {
  writeFileSync(join(dir, "soak.json"), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, "soak.md"), `\`\`\`\n${formatReport(r)}\n\`\`\`\n`);
  const { png } = await renderChart(soakChart(r));
  writeFileSync(join(dir, "soak.png"), png);
}
