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

/**
 * An application's UDP_SEGMENT send: `sends` sendmsg calls of `perSend` datagrams of
 * `size` bytes each (each datagram one repeated byte) from clientIp to serverIp, and a
 * receiver that counts the datagrams, those intact and in size, and those in the order
 * sent. IPv4 or IPv6 by the address. With `gro`, the receiver sets UDP_GRO and splits
 * each read at the gso_size the kernel reports; `reads` tells how many reads it took.
 */
export async function udpSegmentRun(
  lab: NetnsLab,
  o: { clientNs: string; clientIp: string; serverNs: string; serverIp: string },
  size = 1000,
  perSend = 40,
  sends = 5,
  gro = false,
): Promise<{
  sent: boolean;
  stderr: string;
  received: number;
  intact: number;
  inOrder: number;
  reads: number;
}> {
  const PY = "/usr/bin/python3";
  const fam = o.serverIp.includes(":") ? "AF_INET6" : "AF_INET";
  const total = perSend * sends;
  const receiver = lab.spawn(o.serverNs, [
    PY,
    "-c",
    `import socket
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("${o.serverIp}", 5555))
s.settimeout(3)
gro = ${gro ? "True" : "False"}
if gro:
    s.setsockopt(socket.SOL_UDP, 104, 1)  # UDP_GRO
n = ok = order = reads = 0
try:
    while n < ${total}:
        data, anc, _, _ = s.recvmsg(65535, 64)
        reads += 1
        gso = len(data)
        for level, typ, v in anc:
            if level == socket.SOL_UDP and typ == 104:
                gso = int.from_bytes(v[:2], "little")
        for at in range(0, len(data), max(gso, 1)):
            d = data[at:at + gso]
            order += len(d) > 0 and d[0] == n % 251
            n += 1
            ok += len(d) == ${size} and d == bytes([d[0]]) * ${size}
except socket.timeout:
    pass
print(n, ok, order, reads)`,
  ]);
  let out = "";
  receiver.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise((r) => receiver.once("exit", r));
  await new Promise((r) => setTimeout(r, 300));
  const send = await lab.exec(o.clientNs, [
    PY,
    "-c",
    `import socket, time
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM)
s.bind(("${o.clientIp}", 0))
s.setsockopt(socket.SOL_UDP, 103, ${size})  # UDP_SEGMENT
for k in range(${sends}):
    run = b"".join(bytes([(k * ${perSend} + i) % 251]) * ${size} for i in range(${perSend}))
    s.sendto(run, ("${o.serverIp}", 5555))
    time.sleep(0.05)`,
  ]);
  await exited;
  const [received, intact, inOrder, reads] = out.trim().split(/\s+/).map(Number);
  return {
    sent: send.code === 0,
    stderr: send.stderr,
    received: received || 0,
    intact: intact || 0,
    inOrder: inOrder || 0,
    reads: reads || 0,
  };
}
