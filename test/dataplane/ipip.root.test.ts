// Acceptance 3: vxtun `ipip` <-> vxtun `ipip` on a kernel without the ipip module: ping,
// iperf3 TCP, and tshark (an independent dissector) sees valid IP-in-IP on the wire, for
// the per-packet path (ping) and for the fast path's segments of TSO super-packets.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { run, runOk } from "../../src/system/exec.js";
import { podPing, tcpBothWays } from "../fixtures/traffic.js";
import { startVxtun } from "../fixtures/vxtun.js";

/** tshark verifies IP and TCP checksums (off by default). */
const CHECKSUMS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"];

t.test("vxtun ipip <-> vxtun ipip", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const nodes = (await buildUnderlay(lab, 2)).nodes;
  const procs = [];
  for (const [i, n] of nodes.entries()) {
    const other = nodes[1 - i];
    await runOk(["ip", "-n", n.ns, "addr", "add", `10.244.${i + 1}.1/32`, "dev", "lo"]);
    const vx = await startVxtun(lab, n.ns, {
      name: n.name,
      mode: "ipip",
      local: { address: n.address },
      device: { name: "vxtun0" },
      peers: [{ address: other.address, subnet: `10.244.${2 - i}.0/24` }],
    });
    t.teardown(vx.stop);
    procs.push(vx);
  }
  const [a, b] = nodes;
  const mods = await run(["grep", "-w", "^ipip", "/proc/modules"]);
  t.comment(
    mods.code === 0 ? "note: ipip module loaded" : "no ipip module loaded (as on this lab kernel)",
  );

  const dir = mkdtempSync(join(tmpdir(), "vxtun-ipip-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pcap = join(dir, "ipip.pcap");
  const dump = lab.spawn(a.ns, ["tcpdump", "-i", a.dev, "-U", "-c", "8", "-w", pcap, "ip proto 4"]);
  await new Promise((r) => setTimeout(r, 500));
  const ping = await podPing(lab, a.ns, "10.244.1.1", "10.244.2.1", { count: 4 });
  t.equal(ping.code, 0, `ping over IPIP: ${ping.stdout.split("\n").at(-2)}`);
  await new Promise((r) => {
    const timer = setTimeout(r, 3000);
    dump.once("exit", () => {
      clearTimeout(timer);
      r(undefined);
    });
  });

  const tshark = await run(["which", "tshark"]);
  if (tshark.code !== 0) {
    t.comment("tshark not installed: wire check skipped (scripts/setup.sh installs it)");
  } else {
    const all = await runOk([
      "tshark",
      "-r",
      pcap,
      "-o",
      "ip.check_checksum:TRUE",
      "-T",
      "fields",
      "-e",
      "ip.proto",
      "-e",
      "icmp.type",
    ]);
    const rows = all.trim().split("\n").filter(Boolean);
    t.equal(rows.length, 8, "captured 8 IPIP packets");
    t.ok(
      rows.every((r) => r.startsWith("4,1\t")),
      "tshark: outer protocol 4, inner ICMP",
    );
    const bad = await runOk([
      "tshark",
      "-r",
      pcap,
      "-o",
      "ip.check_checksum:TRUE",
      "-Y",
      "_ws.malformed || _ws.expert.severity >= 6291456 || ip.checksum.status == 0",
    ]);
    t.equal(bad.trim(), "", "tshark: no malformed packet, no error, no bad IP checksum");
  }

  // The fast path's segments on the wire while iperf3 runs: full-sized TCP inside IPIP.
  const seg = join(dir, "segments.pcap");
  const segDump = lab.spawn(a.ns, [
    "tcpdump",
    "-i",
    a.dev,
    "-U",
    "-c",
    "200",
    "-w",
    seg,
    "ip proto 4 and greater 1400",
  ]);
  await new Promise((r) => setTimeout(r, 500));
  await tcpBothWays(t, lab, {
    clientNs: a.ns,
    clientIp: "10.244.1.1",
    serverNs: b.ns,
    serverIp: "10.244.2.1",
  });
  segDump.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 300));
  if (tshark.code === 0) {
    const rows = (
      await runOk([
        "tshark",
        "-r",
        seg,
        ...CHECKSUMS,
        "-T",
        "fields",
        "-e",
        "ip.proto",
        "-e",
        "tcp.checksum.status",
      ])
    )
      .trim()
      .split("\n")
      .filter(Boolean);
    t.ok(rows.length >= 100, `captured ${rows.length} full-sized IPIP segments`);
    t.ok(
      rows.every((r) => r === "4,6\t1"),
      "tshark: outer protocol 4, inner TCP, TCP checksum good",
    );
    const bad = await runOk([
      "tshark",
      "-r",
      seg,
      ...CHECKSUMS,
      "-Y",
      "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0",
    ]);
    t.equal(bad.trim(), "", "tshark: no malformed segment, no bad IP or TCP checksum");
  }
  const [sa, sb] = await Promise.all(
    procs.map(
      async (p) => ((await p.call("stats")) as { counters: Record<string, number> }).counters,
    ),
  );
  t.ok(
    sa.tso_superpackets > 100 && sa.tso_segments > 10 * sa.tso_superpackets,
    `A cut ${sa.tso_superpackets} super-packets into ${sa.tso_segments} segments`,
  );
  t.ok(
    sb.coalesced_writes > 100 && sb.coalesced_segments > 2 * sb.coalesced_writes,
    `B wrote ${sb.coalesced_segments} segments as ${sb.coalesced_writes} GSO packets`,
  );
});
