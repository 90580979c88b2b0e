// The IPv6 underlay without a namespace: the peer table that numbers IPv6 peers, and
// the config choosing and checking an IPv6 underlay (the namespace tests are in
// test/underlay/socket.root.test.ts and test/dataplane/ipv6-underlay.root.test.ts).
import t from "tap";
import {
  type Config,
  checkUnderlayFamily,
  chooseLocal,
  configSchema,
  deviceMtu,
  parseConfig,
  parseWithEnv,
} from "../../src/dataplane/config.js";
import { parseIpv6 } from "../../src/encap/addr6.js";
import { Batch } from "../../src/io/batch.js";
import { PeerTable6 } from "../../src/underlay/peers6.js";

t.test("PeerTable6: one index per address, 0 = none, sources resolved in place", async (t) => {
  const p = new PeerTable6(4);
  const a = p.parse("2001:2::1")!;
  const b = p.parse("2001:2:0:0::2")!;
  t.same([a, b], [1, 2], "entries from 1; 0 stays 'no peer'");
  t.equal(p.parse("2001:2::1"), a, "the same address, the same index");
  t.equal(p.format(b), "2001:2::2", "RFC 5952 text back");
  t.equal(p.format(0), "::", "0 formats as ::");
  t.equal(p.parse("198.18.0.1"), undefined, "not IPv6: undefined");
  t.same([...p.bytes.subarray(16, 32)], [...parseIpv6("2001:2::1")!], "bytes the addon reads");
  const rx = new Uint8Array(16 * 3);
  rx.set(parseIpv6("2001:2::2")!, 0);
  rx.set(parseIpv6("2001:2::3")!, 16);
  rx.set(parseIpv6("2001:2::4")!, 32);
  const batch = new Batch(3);
  batch.count = 3;
  p.resolveBatch(batch, rx);
  t.same([...batch.addr], [b, 3, 0], "known, new, and (table full) 0");
  t.equal(p.size, 4, "capacity 4: entries 0..3");
});

t.test("PeerTable6: thousands of addresses keep their indexes (collisions probed)", async (t) => {
  const p = new PeerTable6(5000);
  const want: number[] = [];
  for (let i = 1; i < 4000; i++) want.push(p.parse(`2001:2::${i.toString(16)}`)!);
  const again = want.map((_, k) => p.parse(`2001:2::${(k + 1).toString(16)}`));
  t.same(again, want, "every address found again at its index");
  t.equal(new Set(want).size, want.length, "all distinct");
});

const ifaces = [
  { name: "lo", mtu: 65536, ipv4: ["127.0.0.1"], ipv6: [] },
  { name: "eth0", mtu: 1500, ipv4: ["198.18.0.5"], ipv6: ["2001:2::5", "2001:2::99"] },
  { name: "eth1", mtu: 9000, ipv4: ["10.0.0.5"] },
];

t.test("config: an IPv6 underlay chosen as flanneld chooses flannel-v6.1's", async (t) => {
  const l = (local: Record<string, string>, route?: string) => chooseLocal(local, ifaces, route);
  t.same(l({ family: "ipv6" }, "eth0"), {
    address: "2001:2::5",
    interface: "eth0",
    publicAddress: "2001:2::5",
    interfaceRegex: undefined,
    address4: "198.18.0.5",
  });
  t.equal(l({ address: "2001:2:0::99" }).address, "2001:2::99", "written any way, found");
  t.equal(l({ address: "2001:2::99" }).interface, "eth0");
  t.equal(l({ interface: "eth0", family: "ipv6" }).address, "2001:2::5");
  t.equal(l({ interfaceRegex: "^2001:2::", family: "ipv6" }).interface, "eth0");
  for (const [local, msg] of [
    [{ interface: "eth1", family: "ipv6" }, /eth1 has no global IPv6 address/],
    [{ address: "2001:2::7" }, /^local\.address 2001:2::7 is not configured on any interface/],
    [{ address: "198.18.0.5", family: "ipv6" }, /198\.18\.0\.5 is not ipv6: fix local\.address/],
    [
      { address: "2001:2::5", publicAddress: "203.0.113.5" },
      /publicAddress 203\.0\.113\.5 is not global IPv6/,
    ],
    [{ family: "ipv6" }, /^no IPv6 default route/],
  ] as const) {
    t.throws(() => l(local as Record<string, string>), { message: msg });
  }
});

t.test("config: peers of the underlay's family; no ipip over IPv6 (RFC 2473)", async (t) => {
  const local = { address: "2001:2::5", interface: "eth0", publicAddress: "2001:2::5" };
  const cfg = (raw: object) => parseConfig(raw);
  t.doesNotThrow(() =>
    checkUnderlayFamily(
      cfg({
        peers: [{ address: "2001:2::6", subnet: "10.244.2.0/24" }],
        allowPeers: ["2001:2::6"],
      }),
      local,
    ),
  );
  t.throws(() => checkUnderlayFamily(cfg({ peers: [{ address: "198.18.0.6" }] }), local), {
    message: "peers.0.address 198.18.0.6 is not IPv6 like the underlay 2001:2::5",
  });
  t.throws(() => checkUnderlayFamily(cfg({ allowPeers: ["198.18.0.6"] }), local), {
    message: /^allowPeers\.0 198\.18\.0\.6 is not IPv6/,
  });
  t.throws(() => checkUnderlayFamily(cfg({ mode: "ipip" }), local), {
    message: /^mode ipip needs an IPv4 underlay \(IP in IPv6, RFC 2473, is not supported\)/,
  });
  t.throws(() => cfg({ local: { address: "fe80::1%eth0" } }), {
    message: /local\.address: expected a dotted-quad IPv4 address .* or an IPv6 address/,
  });
  const c = { ...cfg({ mode: "vxlan" }), local } as Config;
  t.equal(deviceMtu(c, 1500), 1430, "VXLAN over IPv6: 70 bytes");
  t.equal(deviceMtu({ ...c, mode: "vxlan-l2" }, 9000), 8930);
});

t.test(
  "config: VXTUN_LOCAL_FAMILY and an IPv6 VXTUN_LOCAL_ADDRESS from the environment",
  async (t) => {
    const env = { VXTUN_LOCAL_FAMILY: "ipv6", VXTUN_LOCAL_PUBLIC_ADDRESS: "2001:2::50" };
    const c = parseWithEnv(configSchema, {}, "f.yaml", env);
    t.same(c.local, { family: "ipv6", publicAddress: "2001:2::50" });
    t.equal(
      parseWithEnv(configSchema, {}, "f", { VXTUN_LOCAL_ADDRESS: "2001:2::5" }).local.address,
      "2001:2::5",
    );
    t.throws(() => parseWithEnv(configSchema, {}, "f.yaml", { VXTUN_LOCAL_FAMILY: "ipx" }), {
      message: /^f\.yaml: local\.family \(from VXTUN_LOCAL_FAMILY\): /,
    });
  },
);
