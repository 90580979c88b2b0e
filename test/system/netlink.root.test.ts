// rtnetlink operations (src/system/netlink.ts over the addon's nlOpen/nlTransact), each
// checked against what `ip -j` then shows in namespaces made for the test, and the
// failures classified by errno into the IpError kinds callers test.
import t from "tap";
import { parseIpv4 } from "../../src/encap/addr.js";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { addrAdd, IpError, type IpErrorKind, ip, ipJson } from "../../src/system/iproute.js";
import {
  ensureBridge,
  Netlink,
  RT_SCOPE_LINK,
  routeDst,
  withNetlink,
  withNsFd,
} from "../../src/system/netlink.js";

interface IpLink {
  ifname: string;
  mtu: number;
  flags: string[];
  address: string;
  master?: string;
  ifalias?: string;
  gso_max_size?: number;
  linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

const v4 = (s: string) => parseIpv4(s) as number;

function kindOf(fn: () => unknown): IpErrorKind | string {
  try {
    fn();
  } catch (e) {
    return e instanceof IpError ? e.kind : `not an IpError: ${(e as Error).message}`;
  }
  return "no error";
}

async function twoNs(t: { teardown: (fn: () => void) => void }) {
  const lab = await NetnsLab.create(t);
  const node = await lab.addNs("nlnode");
  const pod = await lab.addNs("nlpod");
  const nl = new Netlink(node);
  t.teardown(() => nl.close());
  return { lab, node, pod, nl };
}

t.test("veth pair with the peer made straight in another namespace", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { node, pod, nl } = await twoNs(t);
  const br = nl.index("nlbr0") ?? -1;
  t.equal(br, -1, "index() is undefined for a missing link");
  await ensureBridge(node, "nlbr0", {
    cidr: "10.250.1.1/24",
    mtu: 1400,
    network: { addr: v4("10.250.0.0"), len: 16 },
  });
  const bridge = nl.link("nlbr0");
  t.equal(bridge.kind, "bridge");
  withNsFd(`/run/netns/${pod}`, (nsFd) =>
    nl.addVeth(
      { name: "nlh0", mac: "02:00:00:00:0a:01", mtu: 1400, master: bridge.index, up: true },
      { name: "eth0", mac: "02:00:00:00:0a:02", mtu: 1400, gsoMaxSize: 65000, nsFd },
    ),
  );
  nl.setLink("nlh0", { alias: "vxtun/c1/eth0" });
  nl.setHairpin(nl.link("nlh0").index, true);

  const [host] = await ipJson<IpLink[]>(node, ["-d", "link", "show", "dev", "nlh0"]);
  t.equal(host.mtu, 1400);
  t.equal(host.address, "02:00:00:00:0a:01");
  t.equal(host.master, "nlbr0");
  t.equal(host.ifalias, "vxtun/c1/eth0");
  t.ok(host.flags.includes("UP"), "host end up");
  t.equal(host.linkinfo?.info_slave_data?.hairpin, true, "hairpin on");
  const [peer] = await ipJson<IpLink[]>(pod, ["-d", "link", "show", "dev", "eth0"]);
  t.equal(peer.mtu, 1400);
  t.equal(peer.address, "02:00:00:00:0a:02");
  t.equal(peer.gso_max_size, 65000);
  const seen = nl.link("nlh0");
  t.match(seen, { name: "nlh0", mtu: 1400, mac: "02:00:00:00:0a:01", master: bridge.index });
  t.equal(seen.alias, "vxtun/c1/eth0");
  t.ok(
    nl.links().some((l) => l.name === "nlh0" && l.kind === "veth"),
    "links() lists it with its kind",
  );

  // Pod side through a socket opened inside the pod's namespace (by path).
  withNetlink(`/run/netns/${pod}`, (p) => {
    const idx = p.link("eth0").index;
    p.addAddr(idx, v4("10.250.1.5"), 24);
    p.setLink(idx, { up: true });
    p.addRoute({ dst: v4("10.250.1.1"), len: 32, oif: idx, scope: RT_SCOPE_LINK }, "add");
    p.addRoute(
      {
        ...(routeDst("default") as { dst: number; len: number }),
        gateway: v4("10.250.1.1"),
        oif: idx,
      },
      "add",
    );
    t.same(p.addrs(idx), [{ index: idx, addr: v4("10.250.1.5"), len: 24 }]);
    t.ok(
      p.routes().some((r) => r.len === 0 && r.gateway === v4("10.250.1.1")),
      "routes() shows the default route",
    );
    t.equal(
      kindOf(() => p.addRoute({ dst: 0, len: 0, gateway: v4("10.250.1.1"), oif: idx }, "add")),
      "exists",
      "adding the same route again: exists",
    );
  });
  const [pa] = await ipJson<IpLink[]>(pod, ["addr", "show", "dev", "eth0"]);
  t.same(
    pa.addr_info?.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
    ["10.250.1.5/24"],
  );
  const routes = await ipJson<{ dst: string; gateway?: string; dev: string; scope?: string }[]>(
    pod,
    ["route", "show"],
  );
  t.ok(routes.some((r) => r.dst === "default" && r.gateway === "10.250.1.1" && r.dev === "eth0"));
  t.ok(routes.some((r) => r.dst === "10.250.1.1" && r.scope === "link"));

  // Deleting the host end takes the pair.
  nl.delLink("nlh0");
  t.same(await ipJson(pod, ["link", "show", "type", "veth"]), [], "peer gone with the host end");
  t.equal(
    kindOf(() => nl.delLink("nlh0")),
    "not-found",
  );
});

t.test("taken names, vanished namespaces, bad names: kinds, and nothing half-made", async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, node, pod, nl } = await twoNs(t);
  const path = `/run/netns/${pod}`;
  withNsFd(path, (nsFd) => nl.addVeth({ name: "nlh1" }, { name: "eth0", nsFd }));
  // Host name taken, then pod name taken: EEXIST both times, and no new link either side.
  t.equal(
    kindOf(() => withNsFd(path, (nsFd) => nl.addVeth({ name: "nlh1" }, { name: "eth1", nsFd }))),
    "exists",
  );
  t.equal(
    kindOf(() => withNsFd(path, (nsFd) => nl.addVeth({ name: "nlh2" }, { name: "eth0", nsFd }))),
    "exists",
  );
  const hostVeths = await ipJson<IpLink[]>(node, ["link", "show", "type", "veth"]);
  t.same(
    hostVeths.map((l) => l.ifname),
    ["nlh1"],
    "no leftover host end",
  );
  const podVeths = await ipJson<IpLink[]>(pod, ["link", "show", "type", "veth"]);
  t.same(
    podVeths.map((l) => l.ifname),
    ["eth0"],
    "no leftover pod end",
  );

  // Names the kernel would refuse never leave TypeScript.
  t.throws(() => nl.link("x".repeat(16)), /invalid interface name/);
  t.throws(() => nl.addVeth({ name: "ok0" }, { name: "bad/name" }), /invalid interface name/);
  t.equal(
    kindOf(() => nl.setLink("nlh1", { alias: "a".repeat(300) })),
    "other",
    "alias too long: EINVAL",
  );
  t.equal((await ipJson<IpLink[]>(node, ["link", "show", "dev", "nlh1"]))[0].ifalias, undefined);

  // A vanished namespace: opening it, or handing its fd, is not-found.
  const gone = await lab.addNs("nlgone");
  await ip("", ["netns", "del", gone]);
  t.equal(
    kindOf(() => new Netlink(`/run/netns/${gone}`)),
    "not-found",
  );
  t.equal(
    kindOf(() => withNsFd(`/run/netns/${gone}`, () => 0)),
    "not-found",
  );
  // A path that is not a namespace.
  t.equal(
    kindOf(() => new Netlink("/proc/self/status")),
    "other",
  );

  // Addresses: an equal one again is exists; replace is fine; deleting a missing one is not-found.
  const idx = nl.link("nlh1").index;
  nl.addAddr(idx, v4("192.0.2.1"), 24);
  t.equal(
    kindOf(() => nl.addAddr(idx, v4("192.0.2.1"), 24)),
    "exists",
  );
  nl.addAddr(idx, v4("192.0.2.1"), 24, true);
  nl.delAddr(idx, v4("192.0.2.1"), 24);
  t.equal(
    kindOf(() => nl.delAddr(idx, v4("192.0.2.1"), 24)),
    "not-found",
  );
  t.equal(
    kindOf(() => nl.delRoute({ dst: v4("198.51.100.0"), len: 24, oif: idx })),
    "not-found",
  );
  t.equal(
    kindOf(() => nl.setLink(999_999, { up: true })),
    "not-found",
  );
});

t.test(
  "MTU, MAC, master, addrgenmode, routes and neighbours for the dataplane's device",
  async (t) => {
    if (skipUnlessRoot(t)) return;
    const { node, nl } = await twoNs(t);
    await ip(node, ["link", "add", "nld0", "type", "veth", "peer", "name", "nld1"]);
    await ip(node, ["link", "add", "nlbr1", "type", "bridge"]);
    const idx = nl.link("nld0").index;
    nl.setLink(idx, { mtu: 1410, mac: "02:11:22:33:44:55", gsoMaxSize: 65536 });
    nl.setAddrGenModeNone(idx);
    nl.setLink("nld0", { master: nl.link("nlbr1").index });
    nl.addAddr(idx, v4("10.251.0.1"), 16, true);
    nl.setLink(idx, { up: true });
    nl.addRoute({ dst: v4("10.252.0.0"), len: 24, oif: idx });
    nl.addRoute({ dst: v4("10.252.0.0"), len: 24, oif: idx }); // replace: no error
    nl.addRoute({
      dst: v4("10.253.0.0"),
      len: 24,
      gateway: v4("10.253.0.0"),
      oif: idx,
      onlink: true,
    });
    nl.replaceNeigh(idx, v4("10.253.0.0"), "02:aa:bb:cc:dd:ee");
    const [l] = await ipJson<IpLink[]>(node, ["-d", "addr", "show", "dev", "nld0"]);
    t.equal(l.mtu, 1410);
    t.equal(l.address, "02:11:22:33:44:55");
    t.equal(l.master, "nlbr1");
    t.equal(l.gso_max_size, 65536);
    const [d] = await ipJson<{ inet6_addr_gen_mode?: string }[]>(node, [
      "-d",
      "link",
      "show",
      "dev",
      "nld0",
    ]);
    t.equal(d.inet6_addr_gen_mode, "none");
    t.ok(l.flags.includes("UP"));
    t.ok(l.addr_info?.some((a) => a.local === "10.251.0.1" && a.prefixlen === 16));
    const routes = await ipJson<{ dst: string; gateway?: string; flags: string[] }[]>(node, [
      "route",
      "show",
      "dev",
      "nld0",
    ]);
    t.ok(routes.some((r) => r.dst === "10.252.0.0/24"));
    t.ok(
      routes.some(
        (r) =>
          r.dst === "10.253.0.0/24" && r.gateway === "10.253.0.0" && r.flags.includes("onlink"),
      ),
    );
    const neigh = await ipJson<{ dst: string; lladdr: string; state: string[] }[]>(node, [
      "neigh",
      "show",
      "dev",
      "nld0",
    ]);
    t.same(
      neigh.map((n) => [n.dst, n.lladdr, n.state]),
      [["10.253.0.0", "02:aa:bb:cc:dd:ee", ["PERMANENT"]]],
    );
    nl.delRoute({ dst: v4("10.252.0.0"), len: 24, oif: idx });
    nl.setLink("nld0", { master: 0 });
    t.equal((await ipJson<IpLink[]>(node, ["link", "show", "dev", "nld0"]))[0].master, undefined);
    t.notOk(
      (await ipJson<{ dst: string }[]>(node, ["route", "show", "dev", "nld0"])).some(
        (r) => r.dst === "10.252.0.0/24",
      ),
    );
  },
);

t.test("ensureBridge creates, repairs and repeats without error", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const ns = await lab.addNs("br");
  const network = { addr: 0x0af40000, len: 16 }; // 10.244.0.0/16
  const want = { cidr: "10.244.1.1/24", mtu: 1450, network };
  await ensureBridge(ns, "cni0", want);
  // A restarted node with another subnet: the old address in the network goes, one
  // outside it stays, and a second call in a row changes nothing.
  await addrAdd(ns, "cni0", "10.244.7.1/24");
  await addrAdd(ns, "cni0", "192.0.2.1/24");
  await ip(ns, ["link", "set", "cni0", "mtu", "1500", "down"]);
  await ensureBridge(ns, "cni0", want);
  await ensureBridge(ns, "cni0", want);
  const [link] = await ipJson<IpLink[]>(ns, ["addr", "show", "dev", "cni0"]);
  t.equal(link.mtu, 1450);
  t.ok(link.flags.includes("UP"), "up");
  t.same(
    link.addr_info
      ?.filter((a) => a.family === "inet")
      .map((a) => `${a.local}/${a.prefixlen}`)
      .sort(),
    ["10.244.1.1/24", "192.0.2.1/24"],
  );
  // Two creators at once (two CNI ADDs for the first pods): both succeed.
  await Promise.all([ensureBridge(ns, "cni1", want), ensureBridge(ns, "cni1", want)]);
});
