// MTU sweep: inner IPv4 packets of sizes across the tunnel-MTU boundary (and a coarse
// range), DF on and off, through each path and underlay MTU. For every probe: was it
// delivered, did the sender hear "fragmentation needed" (and with which MTU), and
// where was it fragmented — by the sending kernel before the tunnel device, or by vxtun
// (inner, before encapsulation; outer, after it)?
//
// vxtun's device is given the underlay's MTU (not the tunnel's) so that too-big packets
// reach vxtun and its PMTU policy is what is measured; the kernel vxlan reference keeps
// the usual device MTU (underlay - 50), so there the sending kernel does the work.
// The `…-under6` paths run VXLAN (IPv4 inner) over an IPv6 underlay (2001:2::/64, 70
// bytes of overhead): IPv6 is never fragmented on the way, so an outer packet too big
// for the path is fragmented by the sending kernel's IPv6 (Ip6FragCreates: "outer6").
import { NetnsLab } from "../lab/netns.js";
import { buildUnderlay } from "../lab/underlay.js";
import { startVxtun, type VxtunProc } from "../lab/vxtun-process.js";
import { runOk } from "../system/exec.js";
import type { VegaLiteSpec } from "./chart.js";
import { ipv6PeerRoute, kernelVxlanNode, otherPeer, vtepMacOf } from "./two-nodes.js";

export const SWEEP_PATHS = [
  "kernel-vxlan",
  "vxtun-vxlan",
  "vxtun-vxlan-outer",
  "vxtun-ipip",
  // IPv6 inner (flannel-v6.1 over the IPv4 underlay): IPv6 has no DF; "DF on" is
  // `ping -M do` (the sender does not fragment), and too big is a Packet Too Big.
  "kernel-vxlan-ipv6",
  "vxtun-vxlan-ipv6",
  // IPv4 inner over an IPv6 underlay.
  "kernel-vxlan-under6",
  "vxtun-vxlan-under6",
] as const;
export type SweepPath = (typeof SWEEP_PATHS)[number];

export interface SweepOptions {
  paths?: readonly SweepPath[];
  underlayMtus?: readonly number[];
  quick?: boolean;
  onProgress?: (done: number, total: number, what: string) => void;
}

export type Outcome = "delivered" | "frag-needed" | "local-error" | "lost";

export interface Probe {
  path: SweepPath;
  underlayMtu: number;
  tunnelMtu: number;
  df: boolean;
  /** Inner IPv4 total length. */
  size: number;
  /** Size relative to the tunnel MTU, for the chart ("T-1", "T", "T+1", or bytes). */
  label: string;
  outcome: Outcome;
  /** The MTU the sender was told (ICMP or local error), if any. */
  mtu?: number;
  /** Where the request was fragmented: kernel (sender, before the tunnel), inner, outer. */
  fragmented: string[];
}

export interface SweepResult {
  date: string;
  options: { paths: SweepPath[]; underlayMtus: number[]; quick: boolean };
  probes: Probe[];
}

const OVERHEAD: Record<SweepPath, number> = {
  "kernel-vxlan": 50,
  "vxtun-vxlan": 50,
  "vxtun-vxlan-outer": 50,
  "vxtun-ipip": 20,
  "kernel-vxlan-ipv6": 50,
  "vxtun-vxlan-ipv6": 50,
  "kernel-vxlan-under6": 70,
  "vxtun-vxlan-under6": 70,
};

/** The paths whose underlay is IPv6. */
const outerIpv6 = (path: SweepPath) => path.endsWith("-under6");

/** Sizes to probe for a tunnel MTU T on an underlay of MTU U. */
export function sweepSizes(
  t: number,
  u: number,
  quick: boolean,
): { size: number; label: string }[] {
  const around = [
    { size: t - 1, label: "T-1" },
    { size: t, label: "T" },
    { size: t + 1, label: "T+1" },
  ];
  if (quick) return around;
  const coarse = [576, 1000, u, u + 100, 2 * u].map((size) => ({ size, label: String(size) }));
  return [...around, ...coarse]
    .filter((p) => p.size >= 64 && p.size <= 65_000)
    .sort((a, b) => a.size - b.size)
    .filter((p, i, all) => i === 0 || all[i - 1].size !== p.size);
}

/** Fragments the sending kernel made: IpFragCreates, or Ip6FragCreates (`v6`). */
async function ipFragCreates(lab: NetnsLab, ns: string, v6 = false): Promise<number> {
  const name = v6 ? "Ip6FragCreates" : "IpFragCreates";
  const r = await lab.exec(ns, ["nstat", "-asz", name]);
  const m = new RegExp(`${name}\\s+(\\d+)`).exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

async function setup(
  lab: NetnsLab,
  path: SweepPath,
  mtu: number,
): Promise<{ nodes: { ns: string }[]; procs: VxtunProc[] }> {
  const nodes = (await buildUnderlay(lab, 2, mtu, outerIpv6(path) ? "ipv6" : "ipv4")).nodes;
  const procs: VxtunProc[] = [];
  const v6 = path.endsWith("-ipv6");
  for (const [i, n] of nodes.entries()) {
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    if (v6) {
      await lab.execOk(n.ns, ["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
      await runOk(["ip", "-n", n.ns, "-6", "addr", "add", `fd00:0:0:${i + 1}::1/128`, "dev", "lo"]);
    }
    if (path.startsWith("kernel-vxlan")) {
      await kernelVxlanNode(nodes, i, { mtu: mtu - OVERHEAD[path] });
      if (v6) await ipv6PeerRoute(lab, nodes, i, "kernel");
      continue;
    }
    procs.push(
      await startVxtun(lab, n.ns, {
        name: n.name,
        mode: path === "vxtun-ipip" ? "ipip" : "vxlan",
        local: { address: n.address },
        device: { name: "vxtun0", mtu, vtepMac: vtepMacOf(i) },
        peers: [otherPeer(nodes, i)],
        policy: { fragment: path === "vxtun-vxlan-outer" ? "outer" : "inner", df: "unset" },
      }),
    );
    if (v6) await ipv6PeerRoute(lab, nodes, i, procs[i]);
  }
  return { nodes, procs };
}

type Counters = { counters: Record<string, number> };

export async function runMtuSweep(o: SweepOptions = {}): Promise<SweepResult> {
  const quick = !!o.quick;
  const paths = [...(o.paths ?? (quick ? ["vxtun-vxlan"] : SWEEP_PATHS))] as SweepPath[];
  const mtus = [...(o.underlayMtus ?? (quick ? [1500] : [1500, 1400, 9000]))];
  const probes: Probe[] = [];
  const plan = paths.flatMap((path) =>
    mtus.map((u) => ({ path, u, sizes: sweepSizes(u - OVERHEAD[path], u, quick) })),
  );
  const total = plan.reduce((n, p) => n + p.sizes.length * 2, 0);
  let done = 0;
  for (const { path, u, sizes } of plan) {
    const lab = await NetnsLab.create();
    const v6 = path.endsWith("-ipv6");
    // Inner IP + ICMP echo header: what `ping -s` leaves out of the packet size.
    const [src, dst, echoHdr] = v6
      ? ["fd00:0:0:1::1", "fd00:0:0:2::1", 48]
      : ["10.244.1.1", "10.244.2.1", 28];
    try {
      const { nodes, procs } = await setup(lab, path, u);
      const a = nodes[0].ns;
      for (const df of [true, false]) {
        for (const { size, label } of sizes) {
          o.onProgress?.(done, total, `${path} MTU ${u} ${df ? "DF" : "no DF"} ${size} B`);
          // A fresh route cache per probe: a learned PMTU would change the next answer.
          await lab.exec(a, ["ip", ...(v6 ? ["-6"] : []), "route", "flush", "cache"]);
          const before = procs[0]
            ? ((await procs[0].call("stats")) as Counters).counters
            : undefined;
          const kfrag0 = await ipFragCreates(lab, a, v6);
          const frag6 = outerIpv6(path) ? await ipFragCreates(lab, a, true) : 0;
          const r = await lab.exec(a, [
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-M",
            df ? "do" : "dont",
            "-s",
            String(size - echoHdr),
            "-I",
            src,
            dst,
          ]);
          const text = r.stdout + r.stderr;
          const mtuMatch = /mtu ?= ?(\d+)/.exec(text);
          const outcome: Outcome =
            r.code === 0
              ? "delivered"
              : /Frag needed|Packet too big/i.test(text)
                ? "frag-needed"
                : /message too long/i.test(text)
                  ? "local-error"
                  : "lost";
          const fragmented: string[] = [];
          if ((await ipFragCreates(lab, a, v6)) > kfrag0) fragmented.push("kernel");
          if (outerIpv6(path) && (await ipFragCreates(lab, a, true)) > frag6)
            fragmented.push("outer6");
          if (before) {
            const after = ((await procs[0].call("stats")) as Counters).counters;
            if (after.fragmented_inner > before.fragmented_inner) fragmented.push("inner");
            if (after.fragmented_outer > before.fragmented_outer) fragmented.push("outer");
          }
          probes.push({
            path,
            underlayMtu: u,
            tunnelMtu: u - OVERHEAD[path],
            df,
            size,
            label,
            outcome,
            mtu: mtuMatch ? Number(mtuMatch[1]) : undefined,
            fragmented,
          });
          done++;
        }
      }
      for (const p of procs) await p.stop();
    } finally {
      await lab.cleanup();
    }
  }
  o.onProgress?.(done, total, "done");
  return { date: new Date().toISOString(), options: { paths, underlayMtus: mtus, quick }, probes };
}

function cell(p: Probe): string {
  const where = p.fragmented.length ? ` (frag: ${p.fragmented.join("+")})` : "";
  if (p.outcome === "delivered") return `ok${where}`;
  if (p.outcome === "frag-needed") return `ICMP mtu ${p.mtu}`;
  // (ping -6 does not print the MTU with its local error.)
  if (p.outcome === "local-error") return p.mtu ? `EMSGSIZE mtu ${p.mtu}` : "EMSGSIZE";
  return `lost${where}`;
}

/** One table per underlay MTU: rows path × DF, columns sizes. */
export function sweepMarkdown(r: SweepResult): string {
  const out: string[] = [];
  for (const u of r.options.underlayMtus) {
    const ps = r.probes.filter((p) => p.underlayMtu === u);
    const sizes = [...new Set(ps.map((p) => p.size))].sort((a, b) => a - b);
    out.push(
      `Underlay MTU ${u} (T = tunnel MTU: ${u - 50} for VXLAN, ${r.options.paths.some(outerIpv6) ? `${u - 70} for VXLAN over IPv6, ` : ""}${u - 20} for IPIP); inner IPv4 size in bytes` +
        (r.options.paths.some((p) => p.endsWith("-ipv6")) ? " (IPv6 in the `-ipv6` rows)." : "."),
      "",
    );
    out.push(
      `| path | DF | ${sizes.join(" | ")} |`,
      `|---|---|${sizes.map(() => "---").join("|")}|`,
    );
    for (const path of r.options.paths) {
      for (const df of [true, false]) {
        const row = sizes.map((s) => {
          const p = ps.find((x) => x.path === path && x.df === df && x.size === s);
          return p ? cell(p) : "–";
        });
        out.push(`| ${path} | ${df ? "on" : "off"} | ${row.join(" | ")} |`);
      }
    }
    out.push("");
  }
  return out.join("\n");
}

/** Heatmap: outcome per (path, DF) × size label, one panel per underlay MTU. */
export function sweepChart(r: SweepResult): VegaLiteSpec {
  const values = r.probes.map((p) => ({
    row: `${p.path} DF ${p.df ? "on" : "off"}`,
    size: p.size,
    mtu: `underlay MTU ${p.underlayMtu}`,
    outcome:
      p.outcome === "delivered"
        ? p.fragmented.length
          ? `delivered, fragmented (${p.fragmented.join("+")})`
          : "delivered"
        : p.outcome === "frag-needed"
          ? "ICMP frag-needed"
          : p.outcome === "local-error"
            ? "EMSGSIZE (sender)"
            : "lost",
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: "vxtun MTU sweep: what happens to an inner packet of each size",
      anchor: "start",
      fontSize: 16,
    },
    padding: 16,
    data: { values },
    facet: { row: { field: "mtu", type: "nominal", title: null } },
    resolve: { scale: { x: "independent" } },
    spec: {
      width: 520,
      height: { step: 16 },
      mark: { type: "rect", stroke: "white" },
      encoding: {
        x: { field: "size", type: "ordinal", title: "inner IPv4 packet size (bytes)" },
        // labelLimit 0: full row labels ("vxtun-vxlan-outer DF off" was cut at 180 px).
        y: { field: "row", type: "nominal", title: null, axis: { labelLimit: 0 } },
        color: {
          field: "outcome",
          type: "nominal",
          title: "outcome",
          legend: { labelLimit: 320 },
          scale: {
            domain: [
              "delivered",
              "delivered, fragmented (inner)",
              "delivered, fragmented (outer)",
              "delivered, fragmented (kernel)",
              "delivered, fragmented (kernel+inner)",
              "delivered, fragmented (kernel+outer)",
              "delivered, fragmented (outer6)",
              "ICMP frag-needed",
              "EMSGSIZE (sender)",
              "lost",
            ],
            range: [
              "#54a24b",
              "#eeca3b",
              "#f58518",
              "#b279a2",
              "#ff9da6",
              "#9d755d",
              "#bab0ac",
              "#4c78a8",
              "#72b7b2",
              "#e45756",
            ],
          },
        },
      },
    },
  };
}
