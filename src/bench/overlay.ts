// Overlay benchmark: two lab nodes, the same measurements through each path — bare
// underlay, the kernel's vxlan (flannel-style), vxtun vxlan / vxlan-l2 / ipip, and the
// IPv6 pods' paths (`-ipv6`: the kernel's vxlan as flanneld programs flannel-v6.1 over
// the IPv4 underlay, vxtun vxlan the same way, vxtun ipip as 6in4) — repeated with the
// paths interleaved (so drift hits all alike), reported as medians and as ratios to the
// kernel's vxlan measured in the same run (IPv6 rows: to the kernel's with IPv6 pods).
import { cpus, release } from "node:os";
import { podGsoMaxSize } from "../io/gso-batch.js";
import { NetnsLab } from "../lab/netns.js";
import { buildUnderlay, type UnderlayNode } from "../lab/underlay.js";
import { startVxtun, type VxtunProc } from "../lab/vxtun-process.js";
import { runOk } from "../system/exec.js";
import type { VegaLiteSpec } from "./chart.js";
import { cpuSeconds, iperf, machineJiffies, median, pingFlood, pingRtt } from "./traffic.js";
import { ipv6PeerRoute, kernelVxlanNode, otherPeer, vtepMacOf } from "./two-nodes.js";

export const PATHS = [
  "underlay",
  "kernel-vxlan",
  "vxtun-vxlan",
  // The same dataplane with `io.offload: off` (one packet per TUN read, no GSO/GRO):
  // what the offload fast path buys, measured in the same run.
  "vxtun-vxlan-nooffload",
  "vxtun-vxlan-l2",
  "vxtun-ipip",
  "kernel-vxlan-ipv6",
  "vxtun-vxlan-ipv6",
  // 6in4 (protocol 41): this kernel has no `sit` to compare with, so its ratio is to
  // the kernel's vxlan with IPv6 pods like the other IPv6 rows.
  "vxtun-ipip-ipv6",
] as const;
export type PathName = (typeof PATHS)[number];

/** The same-run reference a path's ratios are to. */
export function referenceOf(path: string): PathName {
  return path.endsWith("-ipv6") ? "kernel-vxlan-ipv6" : "kernel-vxlan";
}

export const METRICS = {
  tcp1_gbps: "TCP 1 stream (Gbit/s)",
  tcp4_gbps: "TCP 4 streams (Gbit/s)",
  udp64_kpps: "UDP 64 B received (kpps)",
  udp64_loss: "UDP 64 B loss (%)",
  udp1400_kpps: "UDP 1400 B received (kpps)",
  udp1400_loss: "UDP 1400 B loss (%)",
  ping_p50_ms: "ping p50 (ms)",
  ping_p99_ms: "ping p99 (ms)",
  ping_flood_ms: "ping back to back, avg (ms)",
  cpu_s_per_gbit: "forwarder CPU s per Gbit (TCP 1)",
  busy_pct: "all vCPUs busy during TCP 1 (%)",
} as const;
export type MetricName = keyof typeof METRICS;
/** Metrics where smaller is better (ratios still read "vs kernel"). */
export const LOWER_IS_BETTER: ReadonlySet<MetricName> = new Set([
  "udp64_loss",
  "udp1400_loss",
  "ping_p50_ms",
  "ping_p99_ms",
  "ping_flood_ms",
  "cpu_s_per_gbit",
]);

export interface OverlayBenchOptions {
  paths?: readonly PathName[];
  reps?: number;
  seconds?: number;
  /** Skip the 4-stream and UDP runs (tests, quick looks). */
  quick?: boolean;
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface OverlayBenchResult {
  machine: { cpus: number; cpu: string; kernel: string; node: string };
  date: string;
  options: { paths: PathName[]; reps: number; seconds: number; quick: boolean };
  runs: {
    path: PathName;
    rep: number;
    metrics: Partial<Record<MetricName, number>>;
    errors: string[];
  }[];
  median: Record<string, Partial<Record<MetricName, number>>>;
  ratio: Record<string, Partial<Record<MetricName, number>>>;
}

interface Setup {
  a: { ns: string; ip: string };
  b: { ns: string; ip: string };
  procs: VxtunProc[];
}

async function setupPath(lab: NetnsLab, path: PathName): Promise<Setup> {
  const nodes = (await buildUnderlay(lab, 2)).nodes;
  const [a, b] = nodes;
  if (path.endsWith("-ipv6")) return setupPath6(lab, nodes, path);
  if (path === "underlay") {
    return { a: { ns: a.ns, ip: a.address }, b: { ns: b.ns, ip: b.address }, procs: [] };
  }
  const podIp = (i: number) => `10.244.${i + 1}.2`;
  const procs: VxtunProc[] = [];
  // Pods get what the CNI gives them (src/cni/add.ts): the VXLAN modes' pod end a
  // gso_max_size of one UDP_SEGMENT send; flannel's plugins set none for its kernel vxlan.
  const gso =
    path === "kernel-vxlan"
      ? undefined
      : podGsoMaxSize(path === "vxtun-ipip" ? "ipip" : "vxlan", MTU);
  if (path === "vxtun-vxlan-l2") {
    const pods: string[] = [];
    for (const [i, n] of nodes.entries()) {
      await runOk(["ip", "-n", n.ns, "link", "add", "br0", "mtu", String(MTU), "type", "bridge"]);
      await runOk(["ip", "-n", n.ns, "link", "set", "br0", "up"]);
      pods.push(await addPod(lab, n, `10.244.0.${i + 2}/24`, { bridge: "br0", gso }));
      procs.push(
        await startVxtun(lab, n.ns, {
          name: n.name,
          mode: "vxlan-l2",
          local: { address: n.address },
          device: { name: "vxtap0", bridge: "br0" },
          peers: [{ address: nodes[1 - i].address }],
        }),
      );
    }
    return {
      a: { ns: pods[0], ip: "10.244.0.2" },
      b: { ns: pods[1], ip: "10.244.0.3" },
      procs,
    };
  }
  const pods: string[] = [];
  for (const [i, n] of nodes.entries()) {
    pods.push(await addPod(lab, n, `${podIp(i)}/32`, { gateway: `10.244.${i + 1}.1`, gso }));
    if (path === "kernel-vxlan") {
      await kernelVxlanNode(nodes, i, { finishChecksums: false });
    } else {
      procs.push(
        await startVxtun(lab, n.ns, {
          name: n.name,
          mode: path === "vxtun-ipip" ? "ipip" : "vxlan",
          ...(path === "vxtun-vxlan-nooffload" ? { io: { offload: "off" } } : {}),
          local: { address: n.address },
          device: { name: "vxtun0", address: `10.244.${i + 1}.0/32`, vtepMac: vtepMacOf(i) },
          peers: [otherPeer(nodes, i)],
        }),
      );
    }
  }
  return { a: { ns: pods[0], ip: podIp(0) }, b: { ns: pods[1], ip: podIp(1) }, procs };
}

const MTU = 1450;

/**
 * IPv6 pods (fd00:0:0:<i+1>::2/128, point to point behind fd00:0:0:<i+1>::1), each
 * node's pod subnet fd00:0:0:<i+1>::/64 routed as flanneld routes flannel-v6.1 over
 * the IPv4 underlay (ipv6PeerRoute), by the kernel or by vxtun; ipip: 6in4. The lab
 * turns IPv6 off in its nodes: on again for the pod veth.
 */
async function setupPath6(
  lab: NetnsLab,
  nodes: readonly UnderlayNode[],
  path: PathName,
): Promise<Setup> {
  const kernel = path === "kernel-vxlan-ipv6";
  const ipip = path === "vxtun-ipip-ipv6";
  const gso = kernel ? undefined : podGsoMaxSize(ipip ? "ipip" : "vxlan", MTU);
  const podIp = (i: number) => `fd00:0:0:${i + 1}::2`;
  const procs: VxtunProc[] = [];
  const pods: string[] = [];
  for (const [i, n] of nodes.entries()) {
    await lab.execOk(n.ns, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    const ns = await lab.addNs(`${n.name}-pod`);
    await lab.veth(ns, "eth0", n.ns, "pod0", { mtu: MTU });
    await lab.execOk(n.ns, ["sysctl", "-qw", "net.ipv6.conf.pod0.disable_ipv6=0"]);
    const pod6 = (...args: string[]) => runOk(["ip", "-n", ns, "-6", ...args]);
    const node6 = (...args: string[]) => runOk(["ip", "-n", n.ns, "-6", ...args]);
    if (gso !== undefined) {
      await runOk(["ip", "-n", ns, "link", "set", "eth0", "gso_max_size", String(gso)]);
    }
    const gw = `fd00:0:0:${i + 1}::1`;
    await pod6("addr", "add", `${podIp(i)}/128`, "dev", "eth0", "nodad");
    await pod6("route", "add", `${gw}/128`, "dev", "eth0");
    await pod6("route", "add", "default", "via", gw, "dev", "eth0");
    await node6("addr", "add", `${gw}/128`, "dev", "pod0", "nodad");
    await node6("route", "replace", `${podIp(i)}/128`, "dev", "pod0");
    pods.push(ns);
    if (kernel) {
      await kernelVxlanNode(nodes, i, { finishChecksums: false });
      await ipv6PeerRoute(lab, nodes, i, "kernel");
      continue;
    }
    const p = await startVxtun(lab, n.ns, {
      name: n.name,
      mode: ipip ? "ipip" : "vxlan",
      local: { address: n.address },
      device: { name: "vxtun0", address: `10.244.${i + 1}.0/32`, vtepMac: vtepMacOf(i) },
      peers: [otherPeer(nodes, i)],
    });
    procs.push(p);
    await ipv6PeerRoute(lab, nodes, i, p, ipip);
  }
  return { a: { ns: pods[0], ip: podIp(0) }, b: { ns: pods[1], ip: podIp(1) }, procs };
}

/**
 * A pod behind node `n`, wired the way the CNI plugin wires one: a veth (MTU 1450, the
 * pod end's gso_max_size as given) whose node end is on `bridge`, or (point to point)
 * has `gateway`/32 with a host route to the pod, which routes everything through it.
 * Measuring between pods puts the veth hop and the node's forwarding on every path,
 * the kernel's vxlan included, as in a cluster. Returns the pod's namespace.
 */
async function addPod(
  lab: NetnsLab,
  n: UnderlayNode,
  cidr: string,
  o: { bridge?: string; gateway?: string; gso?: number },
): Promise<string> {
  const ns = await lab.addNs(`${n.name}-pod`);
  await lab.veth(ns, "eth0", n.ns, "pod0", { cidrA: cidr, mtu: MTU });
  if (o.gso !== undefined) {
    await runOk(["ip", "-n", ns, "link", "set", "eth0", "gso_max_size", String(o.gso)]);
  }
  if (o.bridge) {
    await runOk(["ip", "-n", n.ns, "link", "set", "pod0", "master", o.bridge]);
  } else if (o.gateway) {
    const ip = cidr.split("/")[0];
    await runOk(["ip", "-n", n.ns, "addr", "add", `${o.gateway}/32`, "dev", "pod0"]);
    await runOk(["ip", "-n", n.ns, "route", "replace", `${ip}/32`, "dev", "pod0"]);
    await runOk(["ip", "-n", ns, "route", "add", `${o.gateway}/32`, "dev", "eth0"]);
    await runOk(["ip", "-n", ns, "route", "add", "default", "via", o.gateway, "dev", "eth0"]);
  }
  return ns;
}

async function measure(
  lab: NetnsLab,
  s: Setup,
  seconds: number,
  quick: boolean,
  errors: string[],
): Promise<Partial<Record<MetricName, number>>> {
  const m: Partial<Record<MetricName, number>> = {};
  const link = { clientNs: s.a.ns, clientIp: s.a.ip, serverNs: s.b.ns, serverIp: s.b.ip, seconds };
  const warm = await pingRtt(lab, s.a.ns, s.a.ip, s.b.ip, 3, 0.1);
  if (!warm.ok) errors.push("no ping reply before measuring");
  const cpu0 = s.procs.reduce((sum, p) => sum + cpuSeconds(p.child.pid), 0);
  // Whether the path ran out of CPU (every path's, the kernel's included): the
  // machine's busy share from 1 s into the transfer to 1 s before its end, clear of
  // iperf3's start and connection.
  const busy = new Promise<number | undefined>((resolve) => {
    if (seconds < 3) return resolve(undefined);
    setTimeout(() => {
      const j0 = machineJiffies();
      setTimeout(
        () => {
          const j1 = machineJiffies();
          const total = j1.total - j0.total;
          resolve(total > 0 ? (100 * (j1.busy - j0.busy)) / total : undefined);
        },
        (seconds - 2) * 1000,
      );
    }, 1000);
  });
  const tcp1 = await iperf(lab, link);
  const busyPct = await busy;
  const cpu1 = s.procs.reduce((sum, p) => sum + cpuSeconds(p.child.pid), 0);
  if (tcp1.ok) {
    m.tcp1_gbps = tcp1.gbps;
    if (busyPct !== undefined) m.busy_pct = busyPct;
    if (s.procs.length && tcp1.gbps > 0) m.cpu_s_per_gbit = (cpu1 - cpu0) / (tcp1.gbps * seconds);
  } else errors.push(`tcp1: ${tcp1.error}`);
  if (!quick) {
    const tcp4 = await iperf(lab, { ...link, streams: 4 });
    if (tcp4.ok) m.tcp4_gbps = tcp4.gbps;
    else errors.push(`tcp4: ${tcp4.error}`);
    for (const len of [64, 1400] as const) {
      const u = await iperf(lab, { ...link, udpLen: len });
      if (u.ok && u.pps !== undefined) {
        m[len === 64 ? "udp64_kpps" : "udp1400_kpps"] = u.pps / 1000;
        m[len === 64 ? "udp64_loss" : "udp1400_loss"] = (u.loss ?? 0) * 100;
      } else errors.push(`udp${len}: ${u.error}`);
    }
  }
  // Latency of an idle path: a UDP run at full rate leaves a user-space forwarder's
  // socket buffers (16 MB) full, and draining them took up to ~120 ms, which showed up
  // as a ping p99 of 34-116 ms. Let the queues drain, then warm the path again.
  if (!quick) {
    await new Promise((r) => setTimeout(r, 1000));
    await pingRtt(lab, s.a.ns, s.a.ip, s.b.ip, 3, 0.1);
  }
  const ping = await pingRtt(lab, s.a.ns, s.a.ip, s.b.ip, quick ? 10 : 50, 0.02);
  if (ping.ok) {
    m.ping_p50_ms = ping.p50;
    m.ping_p99_ms = ping.p99;
  } else errors.push("ping: no replies");
  const flood = await pingFlood(lab, s.a.ns, s.a.ip, s.b.ip, quick ? 300 : 2000);
  if (Number.isFinite(flood)) m.ping_flood_ms = flood;
  else errors.push("flood ping: no replies");
  return m;
}

export async function runOverlayBench(o: OverlayBenchOptions = {}): Promise<OverlayBenchResult> {
  const paths = [...(o.paths ?? PATHS)];
  const reps = o.reps ?? 3;
  const seconds = o.seconds ?? 5;
  const quick = !!o.quick;
  const runs: OverlayBenchResult["runs"] = [];
  const total = paths.length * reps;
  let done = 0;
  for (let rep = 1; rep <= reps; rep++) {
    for (const path of paths) {
      o.onProgress?.(done, total, `${path} (run ${rep}/${reps})`);
      const lab = await NetnsLab.create();
      const errors: string[] = [];
      let metrics: Partial<Record<MetricName, number>> = {};
      try {
        const s = await setupPath(lab, path);
        metrics = await measure(lab, s, seconds, quick, errors);
        for (const p of s.procs) await p.stop();
      } catch (e) {
        errors.push((e as Error).message);
      } finally {
        await lab.cleanup();
      }
      runs.push({ path, rep, metrics, errors });
      o.onProgress?.(++done, total, `${path} (run ${rep}/${reps})`);
    }
  }
  const med: OverlayBenchResult["median"] = {};
  const ratio: OverlayBenchResult["ratio"] = {};
  for (const path of paths) {
    med[path] = {};
    for (const k of Object.keys(METRICS) as MetricName[]) {
      const v = median(runs.filter((r) => r.path === path).map((r) => r.metrics[k] ?? NaN));
      if (Number.isFinite(v)) med[path][k] = v;
    }
  }
  for (const path of paths) {
    ratio[path] = {};
    const base = med[referenceOf(path)];
    for (const [k, v] of Object.entries(med[path]) as [MetricName, number][]) {
      const b = base?.[k];
      if (b !== undefined && b !== 0) ratio[path][k] = v / b;
    }
  }
  return {
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? "unknown",
      kernel: release(),
      node: process.version,
    },
    date: new Date().toISOString(),
    options: { paths, reps, seconds, quick },
    runs,
    median: med,
    ratio,
  };
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return v >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

/** Markdown: one row per path, each cell "median (ratio to kernel vxlan)". */
export function overlayMarkdown(r: OverlayBenchResult): string {
  const keys = (Object.keys(METRICS) as MetricName[]).filter((k) =>
    r.options.paths.some((p) => r.median[p]?.[k] !== undefined),
  );
  const head = `| path | ${keys.map((k) => METRICS[k]).join(" | ")} |`;
  const sep = `|---|${keys.map(() => "---:").join("|")}|`;
  const rows = r.options.paths.map((p) => {
    const cells = keys.map((k) => {
      const v = r.median[p]?.[k];
      const x = r.ratio[p]?.[k];
      // A ratio of loss percentages says nothing (0.04 % vs 78 % is not "1947×").
      const noRatio = p === referenceOf(p) || x === undefined || k.endsWith("_loss");
      return noRatio ? fmt(v) : `${fmt(v)} (${fmt(x)}×)`;
    });
    return `| ${p} | ${cells.join(" | ")} |`;
  });
  const m = r.machine;
  return [
    `Medians of ${r.options.reps} runs of ${r.options.seconds} s, ratios to kernel vxlan in the same run` +
      (r.options.paths.some((p) => p.endsWith("-ipv6"))
        ? " (`-ipv6` rows: IPv6 pods, ratios to kernel-vxlan-ipv6; vxtun-ipip-ipv6 is 6in4, which has no kernel `sit` here to compare with). "
        : ". ") +
      `Machine: ${m.cpus} × ${m.cpu}, Linux ${m.kernel}, Node ${m.node}; ${r.date.slice(0, 10)}.`,
    "",
    head,
    sep,
    ...rows,
  ].join("\n");
}

/** One small bar chart per metric, paths side by side, kernel vxlan highlighted. */
/** Bar colours: the reference paths stand out from vxtun's. */
const SERIES = {
  "vxtun, median": "#4c78a8",
  "kernel vxlan (reference), median": "#e45756",
  "underlay without tunnel, median": "#9d9d9d",
  "one run": "#1b1b1b",
} as const;

/**
 * One panel per metric: a bar per path at the median, the single runs as dots over it
 * (their spread), one legend for both.
 */
export function overlayChart(r: OverlayBenchResult): VegaLiteSpec {
  const series = (p: string): keyof typeof SERIES =>
    p === referenceOf(p)
      ? "kernel vxlan (reference), median"
      : p === "underlay"
        ? "underlay without tunnel, median"
        : "vxtun, median";
  const values: { metric: string; path: string; value: number; series: string }[] = [];
  for (const p of r.options.paths) {
    for (const [k, v] of Object.entries(r.median[p] ?? {}) as [MetricName, number][]) {
      values.push({ metric: METRICS[k], path: p, value: v, series: series(p) });
    }
  }
  for (const run of r.runs) {
    for (const [k, v] of Object.entries(run.metrics) as [MetricName, number][]) {
      values.push({ metric: METRICS[k], path: run.path, value: v, series: "one run" });
    }
  }
  const x = {
    field: "path",
    type: "nominal",
    sort: [...r.options.paths],
    title: null,
    axis: { labelAngle: -30, labelLimit: 200 },
  } as const;
  const color = {
    field: "series",
    type: "nominal",
    title: null,
    scale: { domain: Object.keys(SERIES), range: Object.values(SERIES) },
    legend: { orient: "top", direction: "horizontal", labelLimit: 300, symbolStrokeWidth: 0 },
  } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: "vxtun overlay benchmark",
      subtitle: `bars: median of ${r.options.reps} runs of ${r.options.seconds} s; dots: each run. ${r.machine.cpus} vCPU, Linux ${r.machine.kernel}, Node ${r.machine.node}, ${r.date.slice(0, 10)}`,
      anchor: "start",
      fontSize: 16,
      subtitleFontSize: 12,
      offset: 12,
    },
    padding: 16,
    data: { values },
    facet: { field: "metric", type: "nominal", title: null, sort: Object.values(METRICS) },
    columns: 3,
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 220,
      height: 140,
      layer: [
        {
          transform: [{ filter: "datum.series !== 'one run'" }],
          mark: "bar",
          encoding: { x, y: { field: "value", type: "quantitative", title: null }, color },
        },
        {
          transform: [{ filter: "datum.series === 'one run'" }],
          mark: { type: "point", filled: true, size: 22, opacity: 0.85 },
          encoding: { x, y: { field: "value", type: "quantitative", title: null }, color },
        },
      ],
    },
  };
}
