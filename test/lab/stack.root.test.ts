// `vxtun lab up --stack`: dual-stack and IPv6-only pods over the IPv4 underlay, through
// the agents' IPv6 leases and the CNI plugin; `lab ping` checks every pair in each family
// the lab has, and a broken IPv6 path is reported as such. `--underlay ipv6`: the same
// pods over VXLAN over IPv6 (the agents publish and use PublicIPv6), checked on the wire.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { controlCall } from "../../src/api/client.js";
import { LABS_DIR, readLab } from "../../src/lab/lab.js";
import { skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { hasTshark } from "../fixtures/tshark.js";
import { CLI, cliLab } from "../fixtures/vxtun.js";

const cases = [
  { mode: "vxlan", stack: "dual", pairs: "24/24 pairs reachable (ipv4 and ipv6)" },
  { mode: "vxlan-l2", stack: "dual", pairs: "24/24 pairs reachable (ipv4 and ipv6)" },
  { mode: "ipip", stack: "ipv6", pairs: "12/12 pairs reachable (ipv6)" },
  {
    mode: "vxlan",
    stack: "dual",
    underlay: "ipv6",
    pairs: "24/24 pairs reachable (ipv4 and ipv6)",
  },
  {
    mode: "vxlan-l2",
    stack: "dual",
    underlay: "ipv6",
    pairs: "24/24 pairs reachable (ipv4 and ipv6)",
  },
];

/**
 * tcpdump on n1's port of the lab's underlay switch while `fn` runs; the pcap file's
 * path. (Not on br0: a bridge forwards known unicast between ports without showing it there.)
 */
async function captureUnderlay(
  t: { teardown: (fn: () => unknown) => void },
  labName: string,
  fn: () => Promise<unknown>,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-v6lab-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pcap = join(dir, "underlay.pcap");
  const sw = `${readLab(labName).prefix}sw`;
  // --immediate-mode: else packets still in the capture ring when tcpdump is told to stop
  // are lost (counted "received by filter", never written).
  const opts = ["-i", "p1", "--immediate-mode", "-U", "-nn", "-w", pcap];
  const argv = ["netns", "exec", sw, "tcpdump", ...opts];
  const dump = spawn("ip", [...argv, "udp port 8472"], { stdio: ["ignore", "ignore", "pipe"] });
  t.teardown(() => dump.exitCode === null && dump.kill("SIGKILL"));
  let err = "";
  await new Promise<void>((resolve, reject) => {
    dump.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) resolve();
    });
    dump.on("exit", () => reject(new Error(`tcpdump exited: ${err}`)));
  });
  await fn();
  dump.kill("SIGINT");
  await once(dump, "exit");
  return pcap;
}

for (const c of cases) {
  const underlay = c.underlay ?? "ipv4";
  const title = `vxtun lab up --nodes 2 --pods 2 --mode ${c.mode} --stack ${c.stack} --underlay ${underlay}`;
  t.test(title, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { name, lab, up } = await cliLab(t, "s", [
      ...["--nodes", "2", "--pods", "2", "--mode", c.mode, "--stack", c.stack],
      ...["--underlay", underlay],
    ]);
    t.match(up.stdout, `stack ${c.stack}, underlay ${underlay}`, "the lab says its families");
    t.match(up.stdout, /subnet 10\.244\.\d+\.0\/24 fd10:244:0:\d+::\/64/, "nodes lease both");
    const pod =
      c.stack === "dual"
        ? /n2-p1 +on n2 +10\.244\.\d+\.\d+ +fd10:244:0:\d+::\w+/
        : /n2-p1 +on n2 +fd10:244:0:\d+::\w+/;
    t.match(up.stdout, pod, "pods listed with their addresses");
    if (underlay === "ipv6") {
      t.match(up.stdout, /n1 +ns \S+ +underlay 2001:2::1 /, "nodes on the IPv6 underlay");
      await ipv6UnderlayChecks(t, name, lab, c.pairs);
      return;
    }
    const ping = await lab("ping");
    t.equal(ping.code, 0, `lab ping exits 0 ${ping.stderr}`);
    t.match(ping.stdout, c.pairs, ping.stdout);
    const addrs = await lab("exec", "n1-p1", "--", "ip", "-br", "addr", "show", "eth0");
    if (c.stack === "ipv6") t.notMatch(addrs.stdout, /10\.244\./, "no IPv4 address in an ipv6 lab");
    if (c.stack === "dual" && c.mode === "vxlan") {
      const routes = await lab("exec", "n1-p1", "--", "ip", "-6", "route", "show", "default");
      t.match(routes.stdout, /default via fd10:244:0:\d+::1 dev eth0/, "IPv6 default route");
      // Break the IPv6 path only: n1's dataplane forgets n2's IPv6 subnet.
      const n2 = /n2 +ns \S+ +underlay \S+ +subnet \S+ (fd10:244:0:\d+::\/64)/.exec(up.stdout)?.[1];
      const sock = `${LABS_DIR}/${name}/n1/dataplane.sock`;
      const del = await run([...CLI, "route", "del", n2 ?? "?", "--socket", sock]);
      t.equal(del.code, 0, `vxtun route del ${n2} on n1 ${del.stderr}`);
      const broken = await lab("ping");
      t.equal(broken.code, 1, "lab ping fails");
      t.match(
        broken.stdout,
        "16/24 pairs reachable",
        "n1 <-> n2 fails (echo and reply) in IPv6 only",
      );
      t.match(broken.stdout, /ipv6:\n[\s\S]*n1-p1 +- +ok +FAIL +FAIL/, "the IPv6 matrix shows it");
    }
  });
}

/**
 * Over an IPv6 underlay: every pair pings in both families, every tunnel packet on n1's
 * switch port is IPv6/UDP 8472 between the nodes' IPv6 addresses (none is IPv4), the agents
 * published PublicIPv6 beside an IPv4 PublicIP, and their FDBs point at IPv6 addresses.
 */
async function ipv6UnderlayChecks(
  t: Test,
  name: string,
  lab: (verb: string, ...args: string[]) => ReturnType<typeof run>,
  pairs: string,
): Promise<void> {
  let ping: Awaited<ReturnType<typeof run>> | undefined;
  const pcap = await captureUnderlay(t, name, async () => {
    ping = await lab("ping");
  });
  t.equal(ping?.code, 0, `lab ping exits 0 ${ping?.stderr}`);
  t.match(ping?.stdout, pairs, ping?.stdout ?? "");
  const fields = ["ip.version", "ipv6.src", "ipv6.dst", "udp.dstport", "vxlan.vni"];
  const read = hasTshark
    ? ["tshark", "-r", pcap, "-d", "udp.port==8472,vxlan", "-T", "fields"]
    : ["tcpdump", "-r", pcap, "-nn"];
  const r = await run(hasTshark ? [...read, ...fields.flatMap((f) => ["-e", f])] : read);
  // tshark lists the inner packet's fields after the outer's: keep the first (outer) ones.
  const rows = r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) =>
      hasTshark
        ? l
            .split("\t")
            .map((f) => f.split(",")[0])
            .join(" ")
        : l,
    );
  // 8 ordered cross-node pairs x 2 families, echo and reply (same-node pairs stay off it).
  t.ok(
    rows.length >= 32,
    `captured ${rows.length} tunnel packets on n1's switch port ${r.code ? r.stderr : ""}`,
  );
  const v6 = hasTshark
    ? /^6 2001:2::[12] 2001:2::[12] 8472 1$/
    : /IP6 2001:2::[12]\.\d+ > 2001:2::[12]\.8472: /;
  t.same(
    rows.filter((l) => !v6.test(l)),
    [],
    "every one is IPv6 / UDP 8472 (VNI 1) between the nodes: none is IPv4",
  );
  const s = readLab(name);
  const fdb = await run([...CLI, "fdb", "show", "--socket", s.nodes[0].socket]);
  t.match(fdb.stdout, /dst 2001:2::2\b/, `n1's FDB sends to n2's IPv6 address: ${fdb.stdout}`);
  const a = (await controlCall(s.nodes[0].socket, "agent", {})) as {
    publicIp: string;
    publicIpv6?: string;
    peers: { address: string; publicIpv6?: string }[];
  };
  t.same(
    [a.publicIp, a.publicIpv6, a.peers.map((p) => [p.address, p.publicIpv6])],
    ["198.18.0.1", "2001:2::1", [["198.18.0.2", "2001:2::2"]]],
    "lease: PublicIP the node's IPv4, PublicIPv6 its IPv6 underlay address; the peer's too",
  );
}

t.test("vxtun lab up --mode ipip --underlay ipv6 is refused in one line", async (t) => {
  if (skipUnlessRoot(t)) return;
  const r = await run([
    ...CLI,
    "lab",
    "up",
    "--lab",
    "v6ipip",
    "--mode",
    "ipip",
    "--underlay",
    "ipv6",
  ]);
  t.equal(r.code, 1, "exit 1");
  t.match(
    r.stderr.trim(),
    /^[^\n]*--mode ipip needs --underlay ipv4 \(IP in IPv6, RFC 2473, is not supported\)[^\n]*$/,
  );
  t.notOk(existsSync(`${LABS_DIR}/v6ipip`), "nothing built");
  const bad = await run([...CLI, "lab", "up", "--lab", "v6ipip", "--underlay", "ipv5"]);
  t.match(bad.stderr, /unknown underlay "ipv5": choose ipv4, ipv6/);
});
