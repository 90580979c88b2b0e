// Node state file (flannel's subnet.env + VXTUN_* keys), the agent config, and flannel's
// network-config rules: formats, one-line errors naming the file, mismatch refusal.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { agentPaths, parseAgentConfig } from "../../src/control/config.js";
import {
  candidateSubnets,
  configMismatch,
  keySubnet,
  leaseValueFor,
  networkConfigFor,
  peerFromLease,
  subnetKey,
} from "../../src/control/flannel.js";
import { readRemembered, renewDelayMs, writeRemembered } from "../../src/control/lease.js";
import { type NodeState, readNodeState, writeNodeState } from "../../src/control/node-state.js";

const dir = mkdtempSync(join(tmpdir(), "vxtun-state-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const state: NodeState = {
  network: "10.244.0.0/16",
  subnet: "10.244.1.1/24",
  mtu: 1450,
  ipMasq: false,
  mode: "vxlan",
  bridge: "vxbr0",
  node: "n1",
  dataplaneSocket: "/run/vxtun/n1.sock",
  cniSocket: "/run/vxtun/n1/cni.sock",
};

t.test("subnet.env with FLANNEL_IPV6_* as flanneld writes them", async (t) => {
  const file = join(dir, "run6", "subnet.env");
  const dual = { ...state, ipv6Network: "fd00::/48", ipv6Subnet: "fd00:0:0:1::1/64" };
  writeNodeState(file, dual);
  t.match(
    readFileSync(file, "utf8"),
    /^FLANNEL_NETWORK=10.244.0.0\/16\nFLANNEL_SUBNET=10.244.1.1\/24\nFLANNEL_IPV6_NETWORK=fd00::\/48\nFLANNEL_IPV6_SUBNET=fd00:0:0:1::1\/64\nFLANNEL_MTU=1450\n/,
  );
  t.same(readNodeState(file), dual);
});

t.test("subnet.env: flannel's keys first, round trip", async (t) => {
  const file = join(dir, "run", "subnet.env");
  writeNodeState(file, state);
  const text = readFileSync(file, "utf8");
  t.match(
    text,
    /^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.1\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\nVXTUN_MODE=vxlan\nVXTUN_BRIDGE=vxbr0\nVXTUN_NODE=n1\n/,
  );
  t.same(readNodeState(file), state);
});

t.test("a flanneld-written subnet.env reads as vxlan", async (t) => {
  const file = join(dir, "flannel.env");
  writeFileSync(
    file,
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
  const s = readNodeState(file);
  t.equal(s.mode, "vxlan");
  t.equal(s.ipMasq, true);
});

t.test("corrupt or missing state files: one line naming the file", async (t) => {
  const file = join(dir, "bad.env");
  for (const [text, why] of [
    ["garbage\n", /line 1 is not KEY=value/],
    ["FLANNEL_NETWORK=10.244.0.0/16\n", /FLANNEL_SUBNET missing/],
    [
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=big\n",
      /FLANNEL_MTU=big is not an MTU/,
    ],
  ] as const) {
    writeFileSync(file, text);
    t.throws(() => readNodeState(file), { message: new RegExp(`node state ${file} is corrupt`) });
    t.throws(() => readNodeState(file), { message: why });
  }
  t.throws(() => readNodeState(join(dir, "none.env")), { message: /not found: is 'vxtun agent'/ });
});

t.test("remembered lease: round trip, corrupt file named", async (t) => {
  const file = join(dir, "state", "lease.json");
  t.equal(readRemembered(file), undefined);
  const r = { subnet: "10.244.3.0/24", network: "10.244.0.0/16", publicIp: "198.18.0.3" };
  writeRemembered(file, r);
  t.same(readRemembered(file), r);
  writeFileSync(file, "{");
  t.throws(() => readRemembered(file), {
    message: new RegExp(`lease state ${file}: not valid JSON .*remove it`),
  });
});

t.test("agent config: defaults, refusals", async (t) => {
  const c = parseAgentConfig({ name: "n1", local: { address: "198.18.0.1" } });
  t.equal(c.network, "10.244.0.0/16");
  t.equal(c.subnetLen, 24);
  t.same(c.store, { type: "file", dir: "/var/lib/vxtun/store" });
  t.equal(c.leaseTtlSeconds, 86400);
  t.equal(c.bridge, "vxbr0");
  t.same(agentPaths(c), {
    stateFile: "/run/vxtun/n1/subnet.env",
    cniSocket: "/run/vxtun/n1/cni.sock",
  });
  const e = parseAgentConfig({
    local: { address: "198.18.0.1" },
    store: { type: "etcd", endpoints: ["http://198.18.0.254:2379"] },
  });
  t.same(e.store, {
    type: "etcd",
    endpoints: ["http://198.18.0.254:2379"],
    prefix: "/coreos.com/network",
  });
  t.throws(
    () => parseAgentConfig({ local: { address: "198.18.0.1" }, peers: [{ address: "1.2.3.4" }] }),
    { message: /peers: the agent learns peers/ },
  );
  t.throws(() => parseAgentConfig({ local: { address: "198.18.0.1" }, subnetLen: 16 }), {
    message: /subnetLen: must be longer/,
  });
  t.throws(
    () => parseAgentConfig({ local: { address: "198.18.0.1" }, ipv6Network: "fd00::1/48" }),
    {
      message: /^config: ipv6Network: an IPv6 prefix with host bits clear/,
    },
  );
  t.throws(() => parseAgentConfig({ local: { address: "198.18.0.1" }, ipv6Network: "fd00::/64" }), {
    message: /ipv6SubnetLen: must be longer than ipv6Network's prefix/,
  });
  t.throws(() => parseAgentConfig({ local: { address: "198.18.0.1" }, store: { type: "zk" } }), {
    message: /^config: store/,
  });
});

const vxlanNode = {
  mode: "vxlan" as const,
  publicIp: "198.18.0.1",
  vni: 1,
  port: 8472,
  vtepMac: "02:aa:bb:cc:dd:ee",
};

t.test("flannel layout helpers", async (t) => {
  t.equal(subnetKey("10.244.1.0/24"), "10.244.1.0-24");
  t.same(keySubnet("10.244.1.0-24"), { subnet: "10.244.1.0/24" });
  t.equal(keySubnet("10.244.1.5-24"), undefined, "non-canonical keys are not subnets");
  const c = candidateSubnets("10.244.0.0/16", 24);
  t.equal(c.length, 255);
  t.equal(c[0], "10.244.1.0/24");
  t.equal(c.at(-1), "10.244.255.0/24");
  const id = vxlanNode;
  t.same(leaseValueFor(id), {
    PublicIP: "198.18.0.1",
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: "02:aa:bb:cc:dd:ee" },
  });
  t.same(networkConfigFor("10.244.0.0/16", 24, id), {
    Network: "10.244.0.0/16",
    SubnetLen: 24,
    Backend: { Type: "vxlan", VNI: 1, Port: 8472 },
  });
  t.same(peerFromLease({ subnet: "10.244.2.0/24" }, leaseValueFor(id), "vxlan"), {
    address: "198.18.0.1",
    subnet: "10.244.2.0/24",
    vtepMac: "02:aa:bb:cc:dd:ee",
  });
  t.match(peerFromLease({ subnet: "10.244.2.0/24" }, leaseValueFor(id), "ipip"), /backend vxlan/);
  t.match(
    peerFromLease({ subnet: "10.244.2.0/24" }, leaseValueFor({ ...id, mode: "vxlan-l2" }), "vxlan"),
    /mode vxlan-l2/,
  );
});

t.test("dual stack in flannel's layout: keys, lease and config fields, peers", async (t) => {
  t.equal(subnetKey("10.244.1.0/24", "fd00:0:0:1::/64"), "10.244.1.0-24&fd00:0:0:1::-64");
  t.same(keySubnet("10.244.1.0-24&fd00:0:0:1::-64"), {
    subnet: "10.244.1.0/24",
    subnet6: "fd00:0:0:1::/64",
  });
  t.equal(keySubnet("10.244.1.0-24&fd00:0000::1:0:0:0-64"), undefined, "non-canonical IPv6");
  t.equal(keySubnet("10.244.1.0-24&fd00::1-64"), undefined, "host bits set");
  const id = { ...vxlanNode, ipv6: true };
  t.same(leaseValueFor(id), {
    PublicIP: "198.18.0.1",
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: "02:aa:bb:cc:dd:ee" },
    BackendV6Data: { VNI: 1, VtepMAC: "02:aa:bb:cc:dd:ee" },
  });
  t.match(leaseValueFor({ ...id, publicIpv6: "2001:db8::1" }), { PublicIPv6: "2001:db8::1" });
  const v6 = { network: "fd00::/48", subnetLen: 64 };
  t.same(networkConfigFor("10.244.0.0/16", 24, id, v6), {
    Network: "10.244.0.0/16",
    SubnetLen: 24,
    EnableIPv6: true,
    IPv6Network: "fd00::/48",
    IPv6SubnetLen: 64,
    Backend: { Type: "vxlan", VNI: 1, Port: 8472 },
  });
  // flanneld's own dual-stack config: IPv6SubnetLen left to its default (64 on a /48).
  const flannel = {
    Network: "10.244.0.0/16",
    EnableIPv6: true,
    IPv6Network: "fd00::/48",
    Backend: { Type: "vxlan" },
  };
  t.equal(configMismatch(flannel, "10.244.0.0/16", 24, id, v6), undefined);
  t.equal(
    configMismatch(flannel, "10.244.0.0/16", 24, id),
    "EnableIPv6 true (ours false)",
    "a single-stack agent refuses a dual-stack network",
  );
  t.match(
    configMismatch(flannel, "10.244.0.0/16", 24, id, { ...v6, network: "fd01::/48" }),
    /IPv6Network/,
  );
  // A lease flanneld wrote: PublicIPv6 set, flannel-v6.1's own MAC.
  const fl = {
    PublicIP: "198.18.0.2",
    PublicIPv6: "2001:db8::2",
    BackendType: "vxlan",
    BackendData: { VNI: 1, VtepMAC: "02:00:00:00:02:01" },
    BackendV6Data: { VNI: 1, VtepMAC: "02:00:00:00:02:06" },
  };
  const key = { subnet: "10.244.2.0/24", subnet6: "fd00:0:0:2::/64" };
  t.same(peerFromLease(key, fl, "vxlan", true), {
    address: "198.18.0.2",
    subnet: "10.244.2.0/24",
    vtepMac: "02:00:00:00:02:01",
    subnet6: "fd00:0:0:2::/64",
    vtepMac6: "02:00:00:00:02:06",
    publicIpv6: "2001:db8::2",
  });
  // PublicIPv6 is the node's address whatever the pods' families: kept for an IPv6 underlay.
  const v4half = {
    address: "198.18.0.2",
    subnet: "10.244.2.0/24",
    vtepMac: "02:00:00:00:02:01",
    publicIpv6: "2001:db8::2",
  };
  t.same(
    peerFromLease(key, fl, "vxlan", false),
    v4half,
    "a single-stack node takes only the IPv4 half",
  );
  t.same(
    peerFromLease(key, { ...fl, BackendV6Data: null }, "vxlan", true),
    v4half,
    "no usable BackendV6Data: an IPv4 peer still",
  );
  t.same(
    peerFromLease(key, { ...fl, VxtunMode: "vxlan-l2" }, "vxlan-l2", false, true),
    { address: "198.18.0.2", subnet: "10.244.2.0/24", publicIpv6: "2001:db8::2" },
    "IPv6 underlay: the peer carries PublicIPv6 (its VTEP destination)",
  );
  for (const PublicIPv6 of [null, undefined]) {
    t.equal(
      peerFromLease(key, { ...fl, PublicIPv6 }, "vxlan", true, true),
      "no PublicIPv6 to reach it over our IPv6 underlay",
      `IPv6 underlay, PublicIPv6 ${PublicIPv6}: not a peer`,
    );
  }
  t.same(
    peerFromLease(
      key,
      { PublicIP: "198.18.0.2", PublicIPv6: null, BackendType: "ipip" },
      "ipip",
      true,
    ),
    { address: "198.18.0.2", subnet: "10.244.2.0/24", subnet6: "fd00:0:0:2::/64" },
    "ipip: 6in4 to PublicIP",
  );
});

t.test("network config mismatch: flannel defaults apply, differences are listed", async (t) => {
  const id = { mode: "vxlan" as const, vni: 1, port: 8472 };
  // What flanneld's docs tell people to write: no SubnetLen, no VNI, no Port.
  const flannel = { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } };
  t.equal(configMismatch(flannel, "10.244.0.0/16", 24, id), undefined);
  t.equal(
    configMismatch(flannel, "10.244.0.0/16", 24, { ...id, vni: 7 }),
    "Backend.VNI 1 (ours 7)",
  );
  t.match(
    configMismatch(flannel, "10.9.0.0/16", 24, id),
    /Network "10.244.0.0\/16" \(ours "10.9.0.0\/16"\)/,
  );
  t.match(configMismatch(flannel, "10.244.0.0/16", 24, { ...id, mode: "vxlan-l2" }), /VxtunMode/);
});

t.test(
  "renewal schedule: flannel's 1 h margin for long leases, a third for short ones",
  async (t) => {
    t.equal(renewDelayMs(86400), 23 * 3600 * 1000);
    t.equal(renewDelayMs(6), 2000);
  },
);

t.test("an agent refuses a store whose network config differs, in one line", async (t) => {
  const { Agent } = await import("../../src/control/agent.js");
  const { pino } = await import("pino");
  const storeDir = join(dir, "store-mismatch");
  const { FileStore } = await import("../../src/control/file-store.js");
  const store = new FileStore({ dir: storeDir });
  await store.putConfigIfAbsent({ Network: "10.9.0.0/16", Backend: { Type: "vxlan" } });
  const cfg = parseAgentConfig({
    name: "n1",
    local: { address: "198.18.0.1" },
    store: { type: "file", dir: storeDir },
    paths: { socket: join(dir, "mm.sock"), state: join(dir, "mm-state") },
  });
  const local = { address: "198.18.0.1", interface: "eth0", publicAddress: "198.18.0.1" };
  await t.rejects(Agent.start({ ...cfg, local }, pino({ level: "silent" })), {
    name: "Error",
    message:
      /^the store's network config \(file\) differs from ours: Network "10\.9\.0\.0\/16" \(ours "10\.244\.0\.0\/16"\)$/,
  });
});
