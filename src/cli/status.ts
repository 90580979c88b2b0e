// `vxtun status` (the agent and the dataplane on one screen) and `vxtun stats --watch`
// (rates per second). Both are built from the control verbs `info`, `stats` and `agent`:
// two stats samples an interval apart give the rates, so nothing on the server keeps
// history for them.
import { controlCall } from "../api/client.js";
import { UserError } from "../api/errors.js";

/** What the `stats` verb answers (src/api/handlers.ts), as far as these views read it. */
export interface StatsReply {
  version?: string;
  uptimeSeconds?: number;
  counters: Record<string, number>;
  drops: Record<string, number>;
  offload?: { state: string; tunOffloads: string[]; udpSegment: boolean; udpGro: boolean };
  queues?: { count: number; why: string; rx: number[] };
}

interface InfoReply {
  name: string;
  mode: string;
  device: string;
  mtu: number;
  underlayMtu: number;
  vtepMac: string;
  local: string;
  vni: number;
  port: number;
}

interface AgentReply {
  subnet: string;
  gateway?: string;
  network: string;
  /** Dual stack. */
  subnet6?: string;
  gateway6?: string;
  ipv6Network?: string;
  lease: { ttlSeconds: number; expiresAt: string };
  store: { kind: string; ok: boolean; error?: string; lastOk?: number; watching?: boolean };
  peers: { address: string; subnet: string; subnet6?: string; vtepMac?: string; since?: number }[];
}

export interface Rates {
  seconds: number;
  counters: Record<string, number>;
  drops: Record<string, number>;
  dropsTotal: number;
}

/** Per-second rates between two samples taken `seconds` apart. */
export function ratesBetween(a: StatsReply, b: StatsReply, seconds: number): Rates {
  const per = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries(Object.keys(y).map((k) => [k, ((y[k] ?? 0) - (x[k] ?? 0)) / seconds]));
  const drops = per(a.drops, b.drops);
  const dropsTotal = Object.values(drops).reduce((s, v) => s + v, 0);
  return { seconds, counters: per(a.counters, b.counters), drops, dropsTotal };
}

/** 93 s → "1m33s"; 90061 → "1d1h1m". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d${h}h${m}m`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s % 60}s`;
  return `${s}s`;
}

const num = (v: number) =>
  v >= 1e9
    ? `${(v / 1e9).toFixed(2)}G`
    : v >= 1e6
      ? `${(v / 1e6).toFixed(2)}M`
      : v >= 1e3
        ? `${(v / 1e3).toFixed(1)}k`
        : `${Math.round(v)}`;

/** The traffic line: packets and bits per second each way, and drops. */
function trafficLine(r: Rates): string {
  const c = r.counters;
  const dir = (p: string, b: string) => `${num(c[p] ?? 0)} pps ${num((c[b] ?? 0) * 8)}bit/s`;
  return [
    `device rx ${dir("tun_rx_packets", "tun_rx_bytes")}`,
    `tx ${dir("tun_tx_packets", "tun_tx_bytes")}`,
    `underlay rx ${dir("underlay_rx_packets", "underlay_rx_bytes")}`,
    `tx ${dir("underlay_tx_packets", "underlay_tx_bytes")}`,
    `drops ${num(r.dropsTotal)}/s`,
  ].join(", ");
}

export interface Status {
  version?: string;
  uptimeSeconds?: number;
  dataplane: InfoReply;
  offload?: StatsReply["offload"];
  queues?: StatsReply["queues"];
  rates: Rates;
  drops: Record<string, number>;
  /** Absent when the instance is a plain `vxtun run`, not an agent. */
  agent?: AgentReply;
}

/** Collect a Status: info, the agent's report (if any), two stats samples. */
export async function collectStatus(socket: string, intervalS: number): Promise<Status> {
  const info = (await controlCall(socket, "info")) as InfoReply;
  const agent = (await controlCall(socket, "agent").catch((e: Error) => {
    if (/does not serve "agent"/.test(e.message)) return undefined;
    throw e;
  })) as AgentReply | undefined;
  const t0 = performance.now();
  const a = (await controlCall(socket, "stats")) as StatsReply;
  await new Promise((r) => setTimeout(r, intervalS * 1000));
  const b = (await controlCall(socket, "stats")) as StatsReply;
  const rates = ratesBetween(a, b, (performance.now() - t0) / 1000);
  const drops = Object.fromEntries(Object.entries(b.drops).filter(([, v]) => v > 0));
  return {
    version: b.version,
    uptimeSeconds: b.uptimeSeconds,
    dataplane: info,
    offload: b.offload,
    queues: b.queues,
    rates,
    drops,
    agent,
  };
}

export function formatStatus(s: Status, now = Date.now()): string {
  const d = s.dataplane;
  const lines = [
    `vxtun ${s.version ?? "?"}, ${d.name}, up ${duration(s.uptimeSeconds ?? 0)}`,
    `device:   ${d.device} (${d.mode}, vni ${d.vni}, port ${d.port}), mtu ${d.mtu} (underlay ${d.underlayMtu}), vtep ${d.vtepMac}, local ${d.local}`,
  ];
  const o = s.offload;
  if (o) {
    lines.push(
      `offload:  ${o.state === "on" ? `on (tun ${o.tunOffloads.join("+")}, udp_segment ${o.udpSegment ? "yes" : "no"}, udp_gro ${o.udpGro ? "yes" : "no"})` : o.state}`,
    );
  }
  if (s.queues) lines.push(`queues:   ${s.queues.count} (${s.queues.why})`);
  lines.push(`rates:    ${trafficLine(s.rates)} (over ${s.rates.seconds.toFixed(1)} s)`);
  const drops = Object.entries(s.drops);
  lines.push(`drops:    ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(", ") : "none"}`);
  const a = s.agent;
  if (!a) {
    lines.push("agent:    none (a plain `vxtun run` instance)");
    return lines.join("\n");
  }
  const expires = Date.parse(a.lease.expiresAt);
  lines.push(
    `subnet:   ${a.subnet} of ${a.network}, gateway ${a.gateway ?? "?"}`,
    ...(a.subnet6
      ? [`subnet6:  ${a.subnet6} of ${a.ipv6Network}, gateway ${a.gateway6 ?? "?"}`]
      : []),
    `lease:    expires ${a.lease.expiresAt} (in ${duration((expires - now) / 1000)})`,
    `store:    ${a.store.kind} ${a.store.ok ? "ok" : "FAILING"}${a.store.watching === false ? ", not watching" : ""}${a.store.lastOk ? `, last ok ${duration((now - a.store.lastOk) / 1000)} ago` : ""}${a.store.error ? `, last error: ${a.store.error}` : ""}`,
    `peers:    ${a.peers.length}`,
  );
  for (const p of a.peers) {
    const age = p.since ? `, up ${duration((now - p.since) / 1000)}` : "";
    lines.push(
      `  ${p.address} ${p.subnet}${p.subnet6 ? ` ${p.subnet6}` : ""}${p.vtepMac ? ` vtep ${p.vtepMac}` : ""}${age}`,
    );
  }
  return lines.join("\n");
}

/** The interval option in seconds (0.1 to 3600). */
export function parseInterval(text: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s < 0.1 || s > 3600) {
    throw new UserError(`--interval takes seconds between 0.1 and 3600, not "${text}"`);
  }
  return s;
}

/** --count: a whole number of frames, at least 1. */
export function parseCount(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new UserError(`--count takes a whole number of frames (1 or more), not "${text}"`);
  }
  return n;
}

/** One `stats --watch` frame: counters and drop reasons that moved, per second. */
export function formatRates(r: Rates, at: Date): string {
  const moved = (x: Record<string, number>) => Object.entries(x).filter(([, v]) => v !== 0);
  const lines = [`${at.toISOString()}  ${trafficLine(r)}`];
  const width = 28;
  for (const [k, v] of moved(r.counters)) lines.push(`  ${k.padEnd(width)} ${num(v)}/s`);
  for (const [k, v] of moved(r.drops)) lines.push(`  drop ${k.padEnd(width - 5)} ${num(v)}/s`);
  return lines.join("\n");
}

/**
 * `vxtun stats --watch`: a frame of rates every interval until interrupted (or `count`
 * frames). JSON: one object per line.
 */
export async function watchStats(
  socket: string,
  o: { intervalS: number; json: boolean; count?: number },
  write: (line: string) => void = (l) => console.log(l),
): Promise<void> {
  let prev = (await controlCall(socket, "stats")) as StatsReply;
  let t = performance.now();
  for (let n = 0; o.count === undefined || n < o.count; n++) {
    await new Promise((r) => setTimeout(r, o.intervalS * 1000));
    const cur = (await controlCall(socket, "stats")) as StatsReply;
    const now = performance.now();
    const r = ratesBetween(prev, cur, (now - t) / 1000);
    const at = new Date();
    write(o.json ? JSON.stringify({ at: at.toISOString(), ...r }) : formatRates(r, at));
    prev = cur;
    t = now;
  }
}
