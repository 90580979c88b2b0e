// What the soak measures while it runs: continuous pings between long-lived pods (turned
// into outages: runs of lost echo requests, with when they started and how long they
// lasted) and each agent's memory (RSS from /proc, V8 heap from its metrics endpoint).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { run } from "../system/exec.js";

/** Seconds between echo requests: 20/s resolves an outage to 50 ms. */
export const PING_INTERVAL_S = 0.05;

export interface Outage {
  /** Pair "n1-p1>n2-p1". */
  pair: string;
  /** Epoch ms of the first lost request (interpolated) and of the next reply. */
  start: number;
  end: number;
  lost: number;
}

export interface PingResult {
  pair: string;
  sent: number;
  received: number;
  outages: Outage[];
  /** Epoch ms of every reply (for restart-to-forwarding). */
  replies: number[];
}

const REPLY = /^\[(\d+\.\d+)\] .*icmp_seq=(\d+) /;
const SENT = /^(\d+) packets transmitted/m;

/** `ping -D` from a pod's namespace to an address until stop(); the outages it saw. */
export class PingProbe {
  private readonly child: ChildProcess;
  private readonly seen = new Map<number, number>();
  private tail = "";
  private out = "";

  constructor(
    readonly pair: string,
    ns: string,
    target: string,
  ) {
    this.child = spawn(
      "ip",
      ["netns", "exec", ns, "ping", "-D", "-n", "-i", String(PING_INTERVAL_S), target],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    this.child.stdout?.setEncoding("utf8");
    this.child.stdout?.on("data", (d: string) => {
      const lines = (this.tail + d).split("\n");
      this.tail = lines.pop() ?? "";
      for (const l of lines) {
        const m = REPLY.exec(l);
        if (m) {
          const seq = Number(m[2]);
          if (!this.seen.has(seq)) this.seen.set(seq, Math.round(Number(m[1]) * 1000));
        } else this.out += `${l}\n`;
      }
    });
  }

  /** SIGINT (ping prints its totals), then the analysis. */
  async stop(): Promise<PingResult> {
    const done = new Promise((r) => this.child.once("close", r));
    this.child.kill("SIGINT");
    await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
    const sent = Number(SENT.exec(this.out)?.[1] ?? Math.max(0, ...this.seen.keys()));
    return analysePings(this.pair, sent, this.seen);
  }
}

/**
 * Runs of lost sequence numbers between replies. A lost request's send time is
 * interpolated between the replies around it; one that trails the last reply is put
 * at the ping interval after it.
 */
export function analysePings(pair: string, sent: number, seen: Map<number, number>): PingResult {
  const seqs = [...seen.keys()].filter((s) => s <= sent).sort((a, b) => a - b);
  const outages: Outage[] = [];
  const step = PING_INTERVAL_S * 1000;
  let prev = 0; // last received seq (0: none yet)
  const close = (from: number, to: number, end: number) => {
    // Lost: from..to inclusive. Start time: interpolate from the reply before, if any.
    const before = prev > 0 ? seen.get(prev)! : end - (to - from + 1) * step;
    const start = prev > 0 ? before + ((from - prev) * (end - before)) / (to + 1 - prev) : before;
    outages.push({ pair, start: Math.round(start), end, lost: to - from + 1 });
  };
  for (const s of seqs) {
    if (s > prev + 1) close(prev + 1, s - 1, seen.get(s)!);
    prev = s;
  }
  if (sent > prev && prev > 0) {
    const t = seen.get(prev)!;
    outages.push({ pair, start: t + step, end: t + (sent - prev + 1) * step, lost: sent - prev });
  }
  return { pair, sent, received: seqs.length, outages, replies: seqs.map((s) => seen.get(s)!) };
}

export interface MemorySample {
  at: number;
  node: string;
  pid: number;
  rssBytes: number;
  heapUsedBytes?: number;
  oldSpaceBytes?: number;
}

/** VmRSS of a process, bytes; undefined if it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, all threads) a process has used, ms; undefined if it is gone. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) in parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in clock ticks (100 Hz)
  } catch {
    return undefined;
  }
}

/**
 * The agent's V8 heap from its Prometheus endpoint in `ns` (main thread): all of it in
 * use, and the old space alone (what survives collections: a leak grows it, while the
 * young generation's sawtooth, up to a 16 MB semi-space, does not).
 */
export async function heapOf(
  ns: string,
  address: string,
): Promise<{ used?: number; old?: number }> {
  const r = await run(
    ["ip", "netns", "exec", ns, "curl", "-s", "-m", "2", `http://${address}/metrics`],
    { timeoutMs: 5000 },
  );
  const num = (re: RegExp) => {
    const m = re.exec(r.stdout);
    return m ? Number(m[1]) : undefined;
  };
  return {
    used: num(/^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?)/m),
    old: num(/^nodejs_heap_space_size_used_bytes\{space="old"\} (\d+(?:\.\d+)?)/m),
  };
}

/** Percentile p (0-100) of xs, nearest rank; undefined when empty. */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
