// `vxtun lab up --stack`: dual-stack and IPv6-only pods over the IPv4 underlay, through
// the agents' IPv6 leases and the CNI plugin; `lab ping` checks every pair in each family
// the lab has, and a broken IPv6 path is reported as such.
import t from "tap";
import { LABS_DIR } from "../../src/lab/lab.js";
import { skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { CLI, cliLab } from "../fixtures/vxtun.js";

const cases = [
  { mode: "vxlan", stack: "dual", pairs: "24/24 pairs reachable (ipv4 and ipv6)" },
  { mode: "vxlan-l2", stack: "dual", pairs: "24/24 pairs reachable (ipv4 and ipv6)" },
  { mode: "ipip", stack: "ipv6", pairs: "12/12 pairs reachable (ipv6)" },
];

for (const c of cases) {
  t.test(`vxtun lab up --nodes 2 --pods 2 --mode ${c.mode} --stack ${c.stack}`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { name, lab, up } = await cliLab(t, "s", [
      ...["--nodes", "2", "--pods", "2", "--mode", c.mode, "--stack", c.stack],
    ]);
    t.match(up.stdout, `stack ${c.stack}`, "the lab says its stack");
    t.match(up.stdout, /subnet 10\.244\.\d+\.0\/24 fd10:244:0:\d+::\/64/, "nodes lease both");
    const pod =
      c.stack === "dual"
        ? /n2-p1 +on n2 +10\.244\.\d+\.\d+ +fd10:244:0:\d+::\w+/
        : /n2-p1 +on n2 +fd10:244:0:\d+::\w+/;
    t.match(up.stdout, pod, "pods listed with their addresses");
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
