// Acceptance 1 of the forwarding engine: vxtun in `vxlan` mode on node A talks to the
// Linux kernel's vxlan on node B, programmed the way flanneld programs flannel.1.
import { readFileSync } from "node:fs";
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { kernelFlannelNode, MAC_A, MAC_B } from "../fixtures/kernel-peer.js";
import { podPing, tcpBothWays } from "../fixtures/traffic.js";
import { startVxtun } from "../fixtures/vxtun.js";

t.test("vxtun vxlan <-> kernel vxlan (flannel-style)", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const [a, b] = (await buildUnderlay(lab, 2)).nodes;
  // Node B: the kernel, as flanneld would program it.
  await kernelFlannelNode(b, a);
  // "Pods": an address per node on loopback.
  await runOk(["ip", "-n", a.ns, "addr", "add", "10.244.1.1/32", "dev", "lo"]);
  await runOk(["ip", "-n", b.ns, "addr", "add", "10.244.2.1/32", "dev", "lo"]);
  // Node A: vxtun.
  const vx = await startVxtun(lab, a.ns, {
    name: "a",
    mode: "vxlan",
    local: { address: a.address },
    device: { name: "vxtun0", address: "10.244.1.0/32", vtepMac: MAC_A },
    peers: [{ address: b.address, subnet: "10.244.2.0/24", vtepMac: MAC_B }],
  });
  t.teardown(vx.stop);

  const ab = await podPing(lab, a.ns, "10.244.1.1", "10.244.2.1");
  t.equal(ab.code, 0, `A -> B ping through vxtun and kernel vxlan\n${ab.stdout}`);
  const ba = await podPing(lab, b.ns, "10.244.2.1", "10.244.1.1");
  t.equal(ba.code, 0, `B -> A ping\n${ba.stdout}`);

  const stats = (await vx.call("stats")) as { counters: Record<string, number> };
  t.ok(stats.counters.encap_packets >= 6, "vxtun encapsulated the pings and replies");
  t.ok(stats.counters.decap_packets >= 6, "vxtun decapsulated the kernel's packets");
  if (ab.code !== 0) t.comment(vx.output());

  // (addKernelVxlan turned tx checksum offload off on B's underlay veth: docs/kernel-interfaces.md.)
  await tcpBothWays(t, lab, {
    clientNs: a.ns,
    clientIp: "10.244.1.1",
    serverNs: b.ns,
    serverIp: "10.244.2.1",
  });
  // A's own TCP builds 64 KiB super-packets for the TUN: 45 segments at MTU 1450, one
  // more than a UDP_SEGMENT send takes. Runs of the same flow fill each other's sends
  // up (the kernel peer above got every byte intact), so there are fewer sends than
  // 2 per super-packet (the count without topping up).
  const c = ((await vx.call("stats")) as { counters: Record<string, number> }).counters;
  t.ok(c.tso_superpackets > 100, `super-packets read from the TUN (${c.tso_superpackets})`);
  const perSp = c.gso_sends / c.tso_superpackets;
  t.ok(perSp < 1.8, `UDP_SEGMENT sends per super-packet: ${perSp.toFixed(2)}`);
  // The checksum loop the addon chose, on the `offload:` line: AVX2 on a CPU that has it.
  const avx2 = /^flags\s*:.*\bavx2\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  const text = (await vx.cli(["stats"])).stdout;
  t.match(
    text,
    new RegExp(`^offload: on \\(.*, checksum ${avx2 ? "avx2" : "scalar"}\\)$`, "m"),
    `stats names the checksum loop (${avx2 ? "the CPU has AVX2" : "no AVX2"})`,
  );
});
