// Traffic tools driven inside lab namespaces: iperf3 (TCP/UDP), ping RTT percentiles,
// the kernel's checksum-error counters (nstat) and a process's CPU time. Every run is
// bounded in time (docs/network-safety.md).
import { readFileSync } from "node:fs";
import type { NetnsLab } from "../lab/netns.js";

/** TcpInCsumErrors + UdpInCsumErrors of a namespace, absolute. */
export async function csumErrors(lab: NetnsLab, ns: string): Promise<number> {
  const r = await lab.execOk(ns, ["nstat", "-asz", "TcpInCsumErrors", "UdpInCsumErrors"]);
  let sum = 0;
  for (const line of r.split("\n")) {
    const m = /^(TcpInCsumErrors|UdpInCsumErrors)\s+(\d+)/.exec(line);
    if (m) sum += Number(m[2]);
  }
  return sum;
}

export interface IperfOptions {
  serverNs: string;
  serverIp: string;
  clientNs: string;
  clientIp: string;
  seconds?: number;
  reverse?: boolean;
  streams?: number;
  /** UDP with this payload size (bytes); TCP when absent. */
  udpLen?: number;
}

export interface IperfResult {
  ok: boolean;
  /** Received goodput. */
  gbps: number;
  /** UDP: datagrams per second received, and the loss fraction. */
  pps?: number;
  loss?: number;
  error?: string;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second: number; seconds: number };
    sum?: {
      bits_per_second: number;
      seconds: number;
      packets: number;
      lost_packets: number;
      lost_percent: number;
    };
  };
}

/** One bounded iperf3 run: a one-off server in serverNs, the client in clientNs. */
export async function iperf(lab: NetnsLab, o: IperfOptions): Promise<IperfResult> {
  const seconds = o.seconds ?? 2;
  const server = lab.spawn(o.serverNs, ["iperf3", "-s", "-1", "-B", o.serverIp]);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const args = ["iperf3", "-c", o.serverIp, "-B", o.clientIp, "-t", String(seconds), "-J"];
    if (o.reverse) args.push("-R");
    if (o.streams && o.streams > 1) args.push("-P", String(o.streams));
    if (o.udpLen) args.push("-u", "-b", "0", "-l", String(o.udpLen));
    const r = await lab.exec(o.clientNs, args, { timeoutMs: (seconds + 20) * 1000 });
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      return { ok: false, gbps: 0, error: (r.stderr || r.stdout).trim().slice(0, 300) };
    }
    if (j.error) return { ok: false, gbps: 0, error: j.error };
    if (o.udpLen) {
      const s = j.end?.sum;
      if (!s) return { ok: false, gbps: 0, error: "no UDP summary" };
      const received = s.packets - s.lost_packets;
      return {
        ok: r.code === 0,
        gbps: (received * o.udpLen * 8) / s.seconds / 1e9,
        pps: received / s.seconds,
        loss: s.packets ? s.lost_packets / s.packets : 0,
      };
    }
    return { ok: r.code === 0, gbps: (j.end?.sum_received?.bits_per_second ?? 0) / 1e9 };
  } finally {
    server.kill("SIGKILL");
  }
}

/** Backwards-compatible name used by tests. */
export const iperfTcp = iperf;

export interface PingResult {
  ok: boolean;
  sent: number;
  received: number;
  p50: number;
  p99: number;
}

/** `count` pings at `intervalS`; RTT percentiles in milliseconds. */
export async function pingRtt(
  lab: NetnsLab,
  ns: string,
  src: string,
  dst: string,
  count = 20,
  intervalS = 0.05,
): Promise<PingResult> {
  const r = await lab.exec(
    ns,
    ["ping", "-c", String(count), "-i", String(intervalS), "-W", "2", "-I", src, dst],
    { timeoutMs: (count * intervalS + 10) * 1000 },
  );
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)]
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const pick = (q: number) =>
    rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))] : NaN;
  return {
    ok: rtts.length > 0,
    sent: count,
    received: rtts.length,
    p50: pick(0.5),
    p99: pick(0.99),
  };
}

/**
 * Flood ping (`ping -f`: the next request leaves as soon as the reply arrives, so no
 * process on the path ever sleeps long): the average RTT in milliseconds, NaN when no
 * reply came. Against pingRtt's spaced pings it separates the cost of the path from
 * the cost of waking idle threads.
 */
export async function pingFlood(
  lab: NetnsLab,
  ns: string,
  src: string,
  dst: string,
  count = 2000,
): Promise<number> {
  const r = await lab.exec(
    ns,
    ["ping", "-f", "-q", "-c", String(count), "-W", "1", "-I", src, dst],
    {
      timeoutMs: 30_000,
    },
  );
  const m = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(r.stdout);
  return m ? Number(m[1]) : Number.NaN;
}

/** User + system CPU seconds a process has used so far (0 when it is gone). */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat(5); here offset by the two dropped.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * The machine's CPU time so far from /proc/stat, in jiffies: `busy` (user, nice,
 * system, irq, softirq) and `total` (those plus idle, iowait and steal). Two readings
 * give the share of all vCPUs that was busy in between, whoever used it.
 */
export function machineJiffies(): { busy: number; total: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number);
    const busy = user + nice + system + irq + softirq;
    return { busy, total: busy + idle + iowait + (steal || 0) };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
