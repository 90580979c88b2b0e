// Masquerade, seen from both sides, in `vxtun lab` (one shared config, underlay from
// each node's default route): a pod pings and opens TCP to the outside host (on the
// underlay switch, no route to 10.244.0.0/16), which sees only the node's underlay
// address; a pod of another node sees the sender pod's own address (no NAT inside the
// cluster network); `lab down` leaves nothing.
import { readFileSync } from "node:fs";
import t from "tap";
import { LABS_DIR, type LabState } from "../../src/lab/lab.js";
import { listLabNamespaces, skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { masqueradeRules } from "../../src/system/nft.js";
import { cliLab } from "../fixtures/vxtun.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inNs = (ns: string, argv: string[], timeoutMs = 20_000) =>
  run(["ip", "netns", "exec", ns, ...argv], { timeoutMs });

/** tcpdump on `dev` in `ns` for `ms`, what it printed (-n, one line per packet). */
async function capture(ns: string, filter: string, ms: number, during: () => Promise<unknown>) {
  const dump = inNs(ns, [
    "timeout",
    String(ms / 1000),
    "tcpdump",
    "-i",
    "eth0",
    "-n",
    "-l",
    filter,
  ]);
  await sleep(800); // tcpdump attaches
  await during();
  return (await dump).stdout;
}

t.test("masquerade: pods reach the outside as their node, pods see pods", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { name, lab, nsBefore, up } = await cliLab(t, "m", ["--nodes", "2", "--pods", "1"]);
  t.match(up.stdout, /out +ns \S+ +underlay 198\.18\.0\.253/, "the outside host is listed");
  const s = JSON.parse(readFileSync(`${LABS_DIR}/${name}/lab.json`, "utf8")) as LabState;
  const [n1, n2] = s.nodes;
  const [p1, p2] = s.pods;
  const out = s.outside!;
  t.same(
    (await inNs(out.ns, ["ip", "-4", "route", "show"])).stdout.trim().split("\n"),
    ["198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.253"],
    "the outside host has no route to the pod network",
  );
  const subnetEnv = readFileSync(n1.stateFile, "utf8");
  t.match(subnetEnv, /^FLANNEL_IPMASQ=true$/m, "subnet.env says masquerade is on");
  t.equal((await masqueradeRules(`${name}-n1`, n1.ns)).length, 5, "n1: flannel's five rules");

  // --- pod -> outside: ping and TCP, seen by the outside host as node n1
  const server = inNs(out.ns, ["timeout", "10", "nc", "-l", "-n", "5555"]);
  const seenOut = await capture(out.ns, "icmp or tcp port 5555", 6000, async () => {
    const ping = await inNs(p1.ns, ["ping", "-c", "2", "-W", "2", out.address]);
    t.equal(ping.code, 0, `pod ${p1.ip} pings the outside host: ${ping.stdout.split("\n").at(-2)}`);
    const nc = await inNs(p1.ns, [
      "sh",
      "-c",
      `echo hello-from-pod | nc -n -N -w 3 ${out.address} 5555`,
    ]);
    t.equal(nc.code, 0, `pod opens TCP to the outside host ${nc.stderr}`);
  });
  t.equal((await server).stdout.trim(), "hello-from-pod", "the outside host read the pod's bytes");
  const outLines = seenOut.split("\n").filter(Boolean);
  t.comment(`tcpdump on the outside host:\n${outLines.slice(0, 6).join("\n")}`);
  t.ok(
    outLines.some((l) => l.includes(`IP ${n1.address} > ${out.address}: ICMP echo request`)),
    `echo requests arrive from node n1's address ${n1.address}`,
  );
  t.ok(
    outLines.some((l) =>
      new RegExp(
        `IP ${n1.address.replaceAll(".", "\\.")}\\.\\d+ > ${out.address.replaceAll(".", "\\.")}\\.5555: Flags \\[S\\]`,
      ).test(l),
    ),
    "the TCP SYN arrives from node n1's address",
  );
  t.notOk(seenOut.includes("10.244."), "no pod address leaves the cluster network");

  // --- pod -> pod on another node: no NAT inside the cluster network
  const seenPod = await capture(p2.ns, "icmp", 4000, async () => {
    const ping = await inNs(p1.ns, ["ping", "-c", "2", "-W", "2", p2.ip]);
    t.equal(ping.code, 0, `pod ${p1.ip} pings pod ${p2.ip} on ${n2.name}`);
  });
  const podLines = seenPod.split("\n").filter(Boolean);
  t.comment(`tcpdump in pod ${p2.name}:\n${podLines.slice(0, 4).join("\n")}`);
  t.ok(
    podLines.some((l) => l.includes(`IP ${p1.ip} > ${p2.ip}: ICMP echo request`)),
    `pod ${p2.name} sees the sender pod's own address ${p1.ip}`,
  );

  const down = await lab("down");
  t.equal(down.code, 0);
  t.same(await listLabNamespaces(), nsBefore, "no namespace left");
});
