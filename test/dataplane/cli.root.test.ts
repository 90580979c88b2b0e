// The CLI and control socket against a running instance: table verbs in iproute2's
// word order, peers in one step, stats, metrics, and one-line errors for bad input.
import { statSync } from "node:fs";
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import { runOk } from "../../src/system/exec.js";
import { CLI, startVxtun } from "../fixtures/vxtun.js";

const MAC_B = "02:00:00:00:02:01";

t.test("table verbs, peers, stats and metrics against a running instance", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const [a] = (await buildUnderlay(lab, 1)).nodes;
  const vx = await startVxtun(lab, a.ns, {
    name: "a",
    mode: "vxlan",
    local: { address: a.address },
    device: { name: "vxtun0", address: "10.244.1.0/32" },
    metrics: { address: "127.0.0.1:9180" },
  });
  t.teardown(vx.stop);
  t.equal(statSync(vx.socket).mode & 0o777, 0o600, "control socket is mode 0600");

  const ok = async (args: string[]) => {
    const r = await vx.cli(args);
    t.equal(r.code, 0, `vxtun ${args.join(" ")} ${r.stderr}`);
    return r.stdout;
  };
  await ok(["peer", "add", "198.18.0.2", "subnet", "10.244.2.0/24", "vtep-mac", MAC_B]);
  t.match(await ok(["route", "show"]), "10.244.2.0/24 via 10.244.2.0 dev vxtun0 onlink");
  t.match(await ok(["neigh", "show"]), `10.244.2.0 dev vxtun0 lladdr ${MAC_B} PERMANENT`);
  t.match(await ok(["fdb", "show"]), `${MAC_B} dev vxtun0 dst 198.18.0.2 self permanent`);
  t.match(await ok(["peer", "show"]), "198.18.0.2 subnet 10.244.2.0/24");
  const kernel = await runOk(["ip", "-n", a.ns, "route", "show", "10.244.2.0/24"]);
  t.match(kernel, "dev vxtun0", "the kernel routes the peer's subnet into the TUN");
  const json = JSON.parse(await ok(["route", "show", "--json"]));
  t.equal(json[0].dst, "10.244.2.0/24");
  await ok(["peer", "del", "198.18.0.2"]);
  t.equal((await ok(["route", "show"])).trim(), "", "peer del removed the route");
  t.equal((await ok(["fdb", "show"])).trim(), "", "... and the FDB entry");

  await ok(["fdb", "add", "02:00:00:00:03:01", "dst", "198.18.0.3"]);
  await ok(["neigh", "add", "10.244.3.0", "lladdr", "02:00:00:00:03:01"]);
  await ok(["route", "add", "10.244.3.0/24", "via", "10.244.3.0", "onlink"]);
  await ok(["route", "del", "10.244.3.0/24"]);
  await ok(["neigh", "del", "10.244.3.0"]);
  await ok(["fdb", "del", "02:00:00:00:03:01"]);

  const bad = async (args: string[], re: RegExp) => {
    const r = await vx.cli(args);
    t.equal(r.code, 1, `vxtun ${args.join(" ")} fails`);
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split("\n").length, 1, "with one line");
  };
  await bad(["fdb", "add", "zz:00:00:00:00:01", "dst", "198.18.0.3"], /^vxtun: .*MAC/i);
  await bad(["route", "add", "10.244.3.5/24"], /host bits set: use 10\.244\.3\.0\/24/);
  await bad(["route", "del", "10.244.9.0/24"], /^vxtun: /);
  await bad(["neigh", "add", "10.244.3.0"], /missing lladdr/);
  await bad(["fdb", "add", "02:00:00:00:03:01", "via", "x"], /unexpected "via"/);
  await bad(["peer", "add", "198.18.0.4"], /subnet is required/);

  const stats = JSON.parse(await ok(["stats", "--json"]));
  t.type(stats.counters.tun_rx_packets, "number");
  t.type(stats.drops.no_route, "number");
  const metrics = await lab.exec(a.ns, [
    "/usr/bin/python3",
    "-c",
    "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9180/metrics').read().decode())",
  ]);
  t.match(
    metrics.stdout,
    /vxtun_drops_total\{reason="no_route"\} \d+/,
    "Prometheus metrics served",
  );
  t.match(metrics.stdout, /vxtun_tun_rx_packets_total \d+/);

  const twin = await lab.exec(a.ns, [...CLI, "run", "--config", "/dev/null"]);
  // Nothing is required; with no default route here the underlay cannot be guessed.
  t.match(
    twin.stderr,
    /^vxtun: no default route to find the underlay interface by: set local\.interface \(VXTUN_LOCAL_INTERFACE\)/,
    "an empty config on a node without a default route: one line naming what to set",
  );
});
