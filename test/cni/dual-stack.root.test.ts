// Dual-stack pods through libcni: with FLANNEL_IPV6_* in the node state the in-agent
// host-local hands out an address of each family from two range sets on host-local's
// own files (last_reserved_ip.0 and .1), the pod gets both addresses and both default
// routes, CHECK and DEL cover both; the same with the reference host-local plugin
// configured with two ranges (delegated), and with an IPv6 range only.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { NetnsLab } from "../../src/lab/netns.js";
import { runOk } from "../../src/system/exec.js";
import { cniTestEnv, driver, startCniServerIn, writeNodeFiles } from "../fixtures/cni.js";

interface Result {
  ips: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
}

t.test("libcni: dual-stack pods, in-agent IPAM and the reference host-local", async (t) => {
  const env = cniTestEnv(t);
  if (!env) return;
  const { drv, dir, bin } = env;
  const f = writeNodeFiles(dir, { node: 1, ipv6: true });
  const lab = await NetnsLab.create(t);
  const node = await lab.addNs("n1");
  await startCniServerIn(lab, node, f.agentSocket);
  const run = (conflist: string, args: string[]) =>
    driver(lab, node, drv.path, bin, f.cache, [args[0], conflist, ...args.slice(1)]);
  const podState = async (pod: string) => ({
    addrs: JSON.parse(await runOk(["ip", "-n", pod, "-j", "addr", "show", "dev", "eth0"]))[0]
      .addr_info.filter((a: { scope: string }) => a.scope === "global")
      .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
    v4: (await runOk(["ip", "-n", pod, "-4", "route", "show", "default"])).trim(),
    v6: (await runOk(["ip", "-n", pod, "-6", "route", "show", "default"])).trim(),
  });

  // --- the in-agent host-local: both families from the node state
  const pod = await lab.addNs("p1");
  const add = await run(f.conflist, ["add", `/run/netns/${pod}`, "ctr-1", "eth0"]);
  t.equal(add.code, 0, `ADD ${add.stdout}${add.stderr}`);
  const res = JSON.parse(add.stdout) as Result;
  t.same(res.ips, [
    { address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 1 },
    { address: "fd00:10:0:1::2/64", gateway: "fd00:10:0:1::1", interface: 1 },
  ]);
  t.same(res.routes, [
    { dst: "0.0.0.0/0", gw: "10.244.1.1" },
    { dst: "::/0", gw: "fd00:10:0:1::1" },
  ]);
  t.same(await podState(pod), {
    addrs: ["10.244.1.2/24", "fd00:10:0:1::2/64"],
    v4: "default via 10.244.1.1 dev eth0",
    v6: "default via fd00:10:0:1::1 dev eth0 metric 1024 pref medium",
  });
  const ipamDir = join(f.dataDir, "vxtun-test");
  t.same(
    readdirSync(ipamDir).sort(),
    ["10.244.1.2", "fd00:10:0:1::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"],
    "host-local's files: one per address, one last_reserved_ip per range set",
  );
  t.equal(readFileSync(join(ipamDir, "fd00:10:0:1::2"), "utf8"), "ctr-1\r\neth0");
  for (const dst of ["10.244.1.2", "fd00:10:0:1::2"]) {
    const ping = await lab.exec(node, ["ping", "-c", "1", "-W", "2", dst]);
    t.equal(ping.code, 0, `the node reaches the pod at ${dst} over the bridge`);
  }
  const check = await run(f.conflist, ["check", `/run/netns/${pod}`, "ctr-1", "eth0"]);
  t.equal(check.code, 0, `CHECK ${check.stdout}${check.stderr}`);
  await runOk(["ip", "-n", pod, "addr", "del", "fd00:10:0:1::2/64", "dev", "eth0"]);
  const bad = await run(f.conflist, ["check", `/run/netns/${pod}`, "ctr-1", "eth0"]);
  t.match(bad.stdout, /lacks fd00:10:0:1::2\/64/, "CHECK notices a missing IPv6 address");
  const del = await run(f.conflist, ["del", `/run/netns/${pod}`, "ctr-1", "eth0"]);
  t.equal(del.code, 0, `DEL ${del.stdout}`);
  t.same(
    readdirSync(ipamDir).filter((n) => !n.startsWith("last") && n !== "lock"),
    [],
    "DEL released both addresses",
  );

  // --- the reference host-local, delegated: two ranges, then IPv6 only
  const ranges = {
    dual: [
      [{ subnet: "10.244.1.0/24", gateway: "10.244.1.1" }],
      [{ subnet: "fd00:10:0:1::/64", gateway: "fd00:10:0:1::1" }],
    ],
    v6only: [[{ subnet: "fd00:10:0:1::/64", gateway: "fd00:10:0:1::1" }]],
  };
  for (const [name, r] of Object.entries(ranges)) {
    const g = writeNodeFiles(
      join(dir),
      { node: 1, ipv6: true, cniSocket: f.agentSocket },
      {
        extra: { ipam: { type: "host-local", ranges: r, dataDir: join(dir, `ref-${name}`) } },
      },
    );
    const p = await lab.addNs(`q-${name}`);
    const a = await run(g.conflist, ["add", `/run/netns/${p}`, `ref-${name}`, "eth0"]);
    t.equal(a.code, 0, `ADD with host-local ${name} ${a.stdout}${a.stderr}`);
    const got = await podState(p);
    const want6 = "default via fd00:10:0:1::1 dev eth0 metric 1024 pref medium";
    if (name === "dual") {
      t.match(got, { addrs: [/^10\.244\.1\.\d+\/24$/, /^fd00:10:0:1::\w+\/64$/], v6: want6 });
      t.equal(got.v4, "default via 10.244.1.1 dev eth0", "both default routes");
    } else {
      t.match(got, { addrs: [/^fd00:10:0:1::\w+\/64$/], v4: "", v6: want6 }, "IPv6 only");
      t.equal(got.addrs.length, 1);
    }
    const d = await run(g.conflist, ["del", `/run/netns/${p}`, `ref-${name}`, "eth0"]);
    t.equal(d.code, 0, `DEL with host-local ${name}`);
  }
});
