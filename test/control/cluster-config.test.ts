// One config for every node: VXTUN_* variables derived from the schema, the underlay
// chosen flanneld's way, etcd security files read up front; every refusal is one line.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { agentConfigSchema, parseAgentConfig } from "../../src/control/config.js";
import { etcdSecurity } from "../../src/control/etcd-store.js";
import { ConfigError, chooseLocal, parseWithEnv } from "../../src/dataplane/config.js";
import { envKeys, envName, overlayEnv } from "../../src/dataplane/config-env.js";
import { masqRuleset, masqTableName } from "../../src/system/nft.js";

const dir = mkdtempSync(join(tmpdir(), "vxtun-cluster-config-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test("VXTUN_* names come from the schema", async (t) => {
  const keys = envKeys(agentConfigSchema);
  for (const [name, path] of [
    ["VXTUN_MODE", "mode"],
    ["VXTUN_LOCAL_INTERFACE", "local.interface"],
    ["VXTUN_LOCAL_INTERFACE_REGEX", "local.interfaceRegex"],
    ["VXTUN_LOCAL_PUBLIC_ADDRESS", "local.publicAddress"],
    ["VXTUN_STORE_ENDPOINTS", "store.endpoints"],
    ["VXTUN_STORE_CA_FILE", "store.caFile"],
    ["VXTUN_STORE_PASSWORD_FILE", "store.passwordFile"],
    ["VXTUN_IP_MASQ", "ipMasq"],
    ["VXTUN_IO_OFFLOAD", "io.offload"],
    ["VXTUN_LEASE_TTL_SECONDS", "leaseTtlSeconds"],
    ["VXTUN_SOURCE_PORT_RANGE", "sourcePortRange"],
  ]) {
    t.equal(keys.get(name)?.path.join("."), path, `${name} -> ${path}`);
  }
  t.equal(envName(["fdb", "maxAddress"]), "VXTUN_FDB_MAX_ADDRESS");
});

t.test("the environment overrides the file, values typed by the schema", async (t) => {
  const file = { mode: "vxlan", local: { interface: "eth0" }, store: { type: "file" } };
  const env = {
    VXTUN_MODE: "ipip",
    VXTUN_LOCAL_INTERFACE: "",
    VXTUN_LOCAL_ADDRESS: "198.18.0.7",
    VXTUN_STORE_TYPE: "etcd",
    VXTUN_STORE_ENDPOINTS: "https://198.18.0.254:2379, https://198.18.0.253:2379",
    VXTUN_IP_MASQ: "false",
    VXTUN_LEASE_TTL_SECONDS: "60",
    VXTUN_SOURCE_PORT_RANGE: "40000,41000",
    VXTUN_POLICY_TTL: "inherit",
    VXTUN_NODE_FLAGS: "--cpu-prof",
  };
  const c = parseWithEnv(agentConfigSchema, file, "f.yaml", env);
  t.equal(c.mode, "ipip");
  t.same(c.local, { interface: "eth0", address: "198.18.0.7" }, "an empty variable is unset");
  t.same(c.store, {
    type: "etcd",
    endpoints: ["https://198.18.0.254:2379", "https://198.18.0.253:2379"],
    prefix: "/coreos.com/network",
  });
  t.equal(c.ipMasq, false);
  t.equal(c.leaseTtlSeconds, 60);
  t.same(c.sourcePortRange, [40000, 41000]);
  t.equal(c.policy.ttl, "inherit");
  t.equal(parseWithEnv(agentConfigSchema, undefined, "f", { VXTUN_POLICY_TTL: "9" }).policy.ttl, 9);
  t.same(overlayEnv(agentConfigSchema, file, {}).raw, file, "no variables: the file as it was");
  t.throws(() => parseWithEnv(agentConfigSchema, file, "f.yaml", { VXTUN_IP_MASQ: "maybe" }), {
    message: /^f\.yaml: ipMasq \(from VXTUN_IP_MASQ\): /,
  });
  t.throws(
    () => parseWithEnv(agentConfigSchema, file, "f.yaml", { VXTUN_STORE_ENDPOINTS: "[oops" }),
    { message: "VXTUN_STORE_ENDPOINTS: starts with '[' but is not valid JSON" },
  );
});

const ifaces = [
  { name: "lo", mtu: 65536, ipv4: ["127.0.0.1"] },
  { name: "eth0", mtu: 1500, ipv4: ["198.18.0.5", "198.18.0.99"] },
  { name: "ens5", mtu: 9001, ipv4: ["10.0.0.5"] },
  { name: "dummy0", mtu: 1500, ipv4: [] },
];

t.test("the underlay, flanneld's way", async (t) => {
  const l = (local: Record<string, string>, route?: string) => chooseLocal(local, ifaces, route);
  t.same(l({}, "ens5"), { address: "10.0.0.5", interface: "ens5", publicAddress: "10.0.0.5" });
  t.same(l({ interface: "eth0" }), {
    address: "198.18.0.5",
    interface: "eth0",
    publicAddress: "198.18.0.5",
  });
  t.equal(l({ interface: "eth0", address: "198.18.0.99" }).address, "198.18.0.99");
  t.equal(l({ interfaceRegex: "^en" }).interface, "ens5");
  t.equal(l({ interfaceRegex: "^198\\.18\\." }).interface, "eth0", "or an address matches");
  t.equal(l({ address: "198.18.0.99" }).interface, "eth0");
  t.same(l({ publicAddress: "203.0.113.5" }, "eth0"), {
    address: "198.18.0.5",
    interface: "eth0",
    publicAddress: "203.0.113.5",
  });
  for (const [local, route, msg] of [
    [{}, undefined, /^no default route .*set local\.interface \(VXTUN_LOCAL_INTERFACE\)/],
    [{ interface: "eth9" }, undefined, /^local\.interface eth9 not found .*have: lo=127/],
    [{ interface: "dummy0" }, undefined, /dummy0 has no IPv4 address/],
    [{ interfaceRegex: "^wl" }, undefined, /^local\.interfaceRegex \/\^wl\/ matches no interface/],
    [{ address: "192.0.2.1" }, undefined, /^local\.address 192\.0\.2\.1 is not configured on any/],
    [{ interface: "ens5", address: "198.18.0.5" }, undefined, /not on local\.interface ens5/],
  ] as const) {
    t.throws(() => l(local as Record<string, string>, route), { message: msg });
  }
  t.throws(() => parseAgentConfig({ local: { interfaceRegex: "eth(" } }), {
    message: "config: local.interfaceRegex: not a valid regular expression",
  });
});

t.test("etcd security: files read up front, one line when they cannot be", async (t) => {
  const etcd = (extra: Record<string, unknown>) =>
    parseAgentConfig({
      store: { type: "etcd", endpoints: ["https://198.18.0.254:2379"], ...extra },
    }).store as Parameters<typeof etcdSecurity>[0];
  const ca = join(dir, "ca.pem");
  writeFileSync(ca, "CA");
  const pw = join(dir, "pw");
  writeFileSync(pw, "s3cret\n");
  const sec = etcdSecurity(etcd({ caFile: ca, username: "root", passwordFile: pw }));
  t.equal(sec.credentials?.rootCertificate.toString(), "CA");
  t.same(sec.auth, { username: "root", password: "s3cret" });
  t.throws(() => etcdSecurity(etcd({ caFile: join(dir, "nope.pem") })), {
    message: `store.caFile ${join(dir, "nope.pem")}: cannot read it (ENOENT)`,
  });
  t.ok(
    (() => {
      try {
        etcdSecurity(etcd({ caFile: join(dir, "nope.pem") }));
      } catch (e) {
        return e instanceof ConfigError;
      }
    })(),
    "a ConfigError: the agent does not retry it",
  );
  t.throws(() => etcd({ certFile: ca }), { message: /certFile and keyFile go together/ });
  t.throws(() => etcd({ username: "root" }), { message: /username needs password/ });
  t.throws(() => etcd({ password: "x", passwordFile: pw, username: "u" }), {
    message: /password or passwordFile, not both/,
  });
});

t.test("masquerade rules: flannel's, in vxtun's own table", async (t) => {
  t.equal(masqTableName("n1"), "vxtun-n1");
  const r = masqRuleset("vxtun-n1", "10.244.0.0/16", "10.244.3.0/24");
  t.match(r, /^table ip vxtun-n1\ndelete table ip vxtun-n1\ntable ip vxtun-n1 \{/);
  t.match(r, /ip saddr 10\.244\.0\.0\/16 masquerade fully-random/);
  t.match(r, /ip saddr != 10\.244\.0\.0\/16 ip daddr 10\.244\.3\.0\/24 return/);
  t.throws(() => masqRuleset("vxtun-n1", "10.244.0.0/33", "10.244.3.0/24"), /network/);
  t.match(r, /\ntable ip6 vxtun-n1\ndelete table ip6 vxtun-n1\n$/, "single stack: no IPv6 table");
  const d = masqRuleset("vxtun-n1", "10.244.0.0/16", "10.244.3.0/24", {
    network: "fd00:10::/48",
    subnet: "fd00:10:0:3::/64",
  });
  t.match(
    d,
    /ip6 saddr fd00:10::\/48 ip6 daddr ff00::\/8 return/,
    "dual stack: IPv6 multicast kept",
  );
  t.match(d, /ip6 saddr != fd00:10::\/48 ip6 daddr fd00:10:0:3::\/64 return/);
});
