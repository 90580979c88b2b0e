// Tests use the same traffic tools as the benchmarks.

import { csumErrors, type IperfOptions, iperfTcp } from "../../src/bench/traffic.js";
import type { NetnsLab } from "../../src/lab/netns.js";

export { csumErrors, type IperfResult, iperf, iperfTcp, pingRtt } from "../../src/bench/traffic.js";

interface Asserts {
  ok(v: unknown, msg: string): void;
  same(a: unknown, b: unknown, msg: string): void;
}

/**
 * iperf3 TCP client -> server, then reversed, and neither namespace counts a new TCP or
 * UDP checksum error (nstat): the acceptance check of every path that rewrites packets.
 */
export async function tcpBothWays(t: Asserts, lab: NetnsLab, link: IperfOptions): Promise<void> {
  const nss = [link.clientNs, link.serverNs];
  const before = await Promise.all(nss.map((ns) => csumErrors(lab, ns)));
  const fwd = await iperfTcp(lab, link);
  t.ok(fwd.ok, `iperf3 TCP client -> server: ${fwd.gbps.toFixed(2)} Gbit/s ${fwd.error ?? ""}`);
  const rev = await iperfTcp(lab, { ...link, reverse: true });
  t.ok(rev.ok, `iperf3 TCP server -> client: ${rev.gbps.toFixed(2)} Gbit/s ${rev.error ?? ""}`);
  const after = await Promise.all(nss.map((ns) => csumErrors(lab, ns)));
  t.same(after, before, "no new TCP/UDP checksum errors on either node (nstat)");
}
