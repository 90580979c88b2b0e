// PMTU and fragmentation in the dataplane (the MTU/fragmentation issue's acceptance):
// DF set and one byte too big -> ICMP "fragmentation needed" with the exact MTU; DF clear
// -> delivered, fragmented inner or outer as configured; EMSGSIZE from the underlay
// lowers the path MTU. Each case is counted. The TUN is given MTU 1500 on purpose, above
// the 1450 the tunnel can carry, so that the kernel hands vxtun the too-big packets.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import type { UnderlayNode } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { podPing } from "../fixtures/traffic.js";
import { vxtunPair } from "../fixtures/vxtun-pair.js";

type Test = { teardown: (fn: () => unknown) => void };

type Counters = { counters: Record<string, number>; drops: Record<string, number> };

/**
 * A new lab with two peered nodes running `policy` (stopped at teardown), device MTU
 * 1500: the PMTU cases shrink the path below it.
 */
async function pair(t: Test, policy: Record<string, unknown>, mode = "vxlan") {
  const lab = await NetnsLab.create(t);
  const r = await vxtunPair(lab, () => ({ policy, device: { mtu: 1500 } }), mode);
  for (const p of r.procs) t.teardown(p.stop);
  return { lab, ...r };
}

/** ping node 2's pod from node 1's, `size` bytes of ICMP payload, with DF or without. */
const ping = (lab: NetnsLab, a: UnderlayNode, size: number, df: "do" | "dont", count = 2) =>
  podPing(lab, a.ns, "10.244.1.1", "10.244.2.1", {
    count,
    interval: 0.3,
    args: ["-M", df, "-s", String(size)],
  });

for (const mode of ["vxlan", "ipip"]) {
  const overhead = mode === "vxlan" ? 50 : 20;
  const mtu = 1500 - overhead;
  // ICMP payload that makes the IPv4 packet exactly one byte over the tunnel MTU.
  const over = mtu + 1 - 28;

  t.test(`${mode}: DF set, one byte too big -> frag-needed with mtu ${mtu}`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, nodes, procs } = await pair(t, {}, mode);
    const fits = await ping(lab, nodes[0], over - 1, "do", 1);
    t.equal(fits.code, 0, "a packet of exactly the tunnel MTU crosses with DF");
    const r = await ping(lab, nodes[0], over, "do");
    t.not(r.code, 0, "the too-big ping gets no reply");
    t.match(r.stdout + r.stderr, new RegExp(`mtu ?= ?${mtu}\\b`), `the sender learns mtu ${mtu}`);
    const s = (await procs[0].call("stats")) as Counters;
    t.ok(s.counters.icmp_frag_needed_sent >= 1, "counted: icmp_frag_needed_sent");
    t.ok(s.drops.too_big >= 1, "counted: too_big drop");
  });

  t.test(`${mode}: DF clear, too big -> fragmented inner, delivered`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, nodes, procs } = await pair(t, { fragment: "inner", df: "unset" }, mode);
    const r = await ping(lab, nodes[0], over + 200, "dont");
    t.equal(r.code, 0, "the ping and its reply arrive");
    const s = (await procs[0].call("stats")) as Counters;
    t.equal(s.counters.fragmented_inner, 2, "both requests fragmented before encapsulation");
    t.equal(s.counters.fragmented_outer, 0);
  });

  t.test(`${mode}: DF clear, too big, fragment outer -> kernel reassembles`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, nodes, procs } = await pair(t, { fragment: "outer", df: "unset" }, mode);
    const r = await ping(lab, nodes[0], over + 200, "dont");
    t.equal(r.code, 0, "the ping and its reply arrive");
    const a = (await procs[0].call("stats")) as Counters;
    const b = (await procs[1].call("stats")) as Counters;
    t.equal(a.counters.fragmented_outer, 2, "both requests sent as outer fragments");
    t.ok(b.counters.kernel_ip_reasm_oks >= 2, "the receiving kernel reassembled them");
  });
}

t.test("EMSGSIZE from the underlay lowers the route's path MTU", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, nodes, procs } = await pair(t, {});
  const [a] = nodes;
  // The underlay shrinks under a running dataplane (which started with 1500).
  await runOk(["ip", "-n", a.ns, "link", "set", a.dev, "mtu", "1400"]);
  await ping(lab, a, 1372, "do", 1); // 1400 inner + 50 > 1400: EMSGSIZE, lost
  const routes = await procs[0].cli(["route", "show"]);
  t.match(routes.stdout, /10\.244\.2\.0\/24 .*mtu 1350/, "route shows the learned path MTU");
  const s = (await procs[0].call("stats")) as Counters;
  t.ok(s.counters.pmtu_updates >= 1, "counted: pmtu_updates");
  t.ok(s.counters.send_emsgsize >= 1, "counted: send_emsgsize");
  const r = await ping(lab, a, 1372, "do");
  t.match(r.stdout + r.stderr, /mtu ?= ?1350\b/, "the next sender hears mtu 1350");
});
