// Traffic oracles for namespace tests: iperf3 runs and the kernel's own checksum-error
// counters (nstat), read inside the namespaces the test created.
import type { NetnsLab } from "../../src/lab/netns.js";

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

export interface IperfResult {
  ok: boolean;
  gbps: number;
  error?: string;
}

/**
 * One bounded iperf3 TCP run from `clientNs` to a server started in `serverNs` on
 * `serverIp`; `reverse` makes the server send.
 */
export async function iperfTcp(
  lab: NetnsLab,
  o: {
    serverNs: string;
    serverIp: string;
    clientNs: string;
    clientIp: string;
    seconds?: number;
    reverse?: boolean;
  },
): Promise<IperfResult> {
  const server = lab.spawn(o.serverNs, ["iperf3", "-s", "-1", "-B", o.serverIp]);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const args = ["iperf3", "-c", o.serverIp, "-B", o.clientIp, "-t", String(o.seconds ?? 2), "-J"];
    if (o.reverse) args.push("-R");
    const r = await lab.exec(o.clientNs, args, { timeoutMs: ((o.seconds ?? 2) + 15) * 1000 });
    try {
      const j = JSON.parse(r.stdout) as {
        error?: string;
        end?: { sum_received?: { bits_per_second: number } };
      };
      if (j.error) return { ok: false, gbps: 0, error: j.error };
      return { ok: r.code === 0, gbps: (j.end?.sum_received?.bits_per_second ?? 0) / 1e9 };
    } catch {
      return { ok: false, gbps: 0, error: r.stderr || r.stdout };
    }
  } finally {
    server.kill("SIGKILL");
  }
}
