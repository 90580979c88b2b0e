// Input the plugin must refuse, each with the spec's code and a message naming the
// problem; plus result encoding per version and the node-state reader. No root needed:
// every refusal happens before the plugin touches a link.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parseEnvFile, readNodeState } from "../../src/cni/node-state.js";
import { handleCni } from "../../src/cni/plugin.js";
import { startCniServer } from "../../src/cni/server.js";
import { encodeResult } from "../../src/cni/version.js";
import { ensureCniBuilt, SHIM, writeState } from "../fixtures/cni.js";

const dir = mkdtempSync(join(tmpdir(), "vxtun-cni-bad-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const stateFile = join(dir, "subnet.env");
writeState(stateFile, { node: 1 });
const conf = (o: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.0.0", name: "net", type: "vxtun", stateFile, ...o });
const env = (o: Record<string, string | undefined> = {}) => ({
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/run/netns/vxt-does-not-exist",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/usr/lib/cni",
  ...o,
});

const cases: [string, Record<string, string | undefined>, string, number, RegExp][] = [
  ["no CNI_COMMAND", env({ CNI_COMMAND: undefined }), conf(), 4, /CNI_COMMAND/],
  ["unknown command", env({ CNI_COMMAND: "FROB" }), conf(), 4, /unknown CNI_COMMAND "FROB"/],
  ["no CNI_NETNS on ADD", env({ CNI_NETNS: undefined }), conf(), 4, /\[CNI_NETNS\] missing/],
  [
    "no CNI_CONTAINERID and CNI_IFNAME",
    env({ CNI_CONTAINERID: undefined, CNI_IFNAME: "" }),
    conf(),
    4,
    /\[CNI_CONTAINERID,CNI_IFNAME\] missing/,
  ],
  ["no CNI_PATH", env({ CNI_PATH: undefined }), conf(), 4, /CNI_PATH/],
  ["bad JSON", env(), "{not json", 6, /failed to decode network configuration/],
  ["JSON that is not an object", env(), "[1,2]", 6, /not a JSON object/],
  ["unknown cniVersion", env(), conf({ cniVersion: "2.0.0" }), 1, /incompatible CNI versions/],
  ["no cniVersion", env(), conf({ cniVersion: undefined }), 1, /incompatible CNI versions/],
  ["bad network name", env(), conf({ name: "-bad name" }), 7, /invalid network name/],
  ["bad mode", env(), conf({ mode: "l2" }), 7, /"mode" must be "bridge" or "ptp"/],
  ["too long ifname", env({ CNI_IFNAME: "eth0123456789abc" }), conf(), 4, /invalid interface name/],
  ["ifname with a slash", env({ CNI_IFNAME: "a/b" }), conf(), 4, /invalid interface name/],
  ["ifname '..'", env({ CNI_IFNAME: ".." }), conf(), 4, /invalid interface name/],
  [
    "300-character container ID",
    env({ CNI_CONTAINERID: "c".repeat(300) }),
    conf(),
    4,
    /CNI_CONTAINERID is 300 characters long/,
  ],
  ["container ID with ';'", env({ CNI_CONTAINERID: "c1;rm" }), conf(), 4, /invalid container ID/],
  ["relative netns path", env({ CNI_NETNS: "netns/x" }), conf(), 4, /not an absolute path/],
  ["netns that does not exist", env(), conf(), 3, /network namespace .* does not exist/],
  [
    "CHECK on a 0.3.1 config",
    env({ CNI_COMMAND: "CHECK" }),
    conf({ cniVersion: "0.3.1" }),
    1,
    /does not allow CHECK/,
  ],
  ["GC on a 1.0.0 config", env({ CNI_COMMAND: "GC" }), conf(), 1, /does not allow GC/],
];

t.test("bad input table (library)", async (t) => {
  for (const [what, e, stdin, code, msg] of cases) {
    const r = await handleCni(e, stdin);
    t.equal(r.code, 1, `${what}: non-zero exit`);
    const out = JSON.parse(r.stdout) as { code: number; msg: string; cniVersion: string };
    t.equal(out.code, code, `${what}: code ${code}`);
    t.match(out.msg, msg, `${what}: "${out.msg}"`);
    t.ok(out.cniVersion, `${what}: error carries cniVersion`);
  }
});

t.test("missing node state is 'try again later' naming the file and the agent", async (t) => {
  const r = await handleCni(
    env({ CNI_NETNS: "/proc/self/ns/net" }),
    conf({ stateFile: join(dir, "absent.env") }),
  );
  const out = JSON.parse(r.stdout) as { code: number; msg: string };
  t.equal(out.code, 11);
  t.match(out.msg, /absent\.env.*vxtun agent writes it/);
  const st = await handleCni(
    env({ CNI_COMMAND: "STATUS" }),
    conf({ cniVersion: "1.1.0", stateFile: join(dir, "absent.env") }),
  );
  t.equal(JSON.parse(st.stdout).code, 50, "STATUS without state: 50");
});

t.test("VERSION", async (t) => {
  const r = await handleCni({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.1.0"}');
  t.same(JSON.parse(r.stdout), {
    cniVersion: "1.1.0",
    supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  });
});

t.test("results per version", async (t) => {
  const r = {
    interfaces: [{ name: "vxabc", mac: "02:00:00:00:00:01", mtu: 1450 }],
    ips: [{ address: "10.244.1.2/24", gateway: "10.244.1.1", interface: 0 }],
    routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }],
    dns: {},
  };
  for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
    const e = encodeResult(r, v) as { ips: { version?: string }[]; interfaces: { mtu?: number }[] };
    t.equal(e.ips[0].version, "4", `${v}: ips carry version`);
    t.equal(e.interfaces[0].mtu, undefined, `${v}: no interface mtu`);
  }
  const v1 = encodeResult(r, "1.0.0") as {
    ips: { version?: string }[];
    interfaces: { mtu?: number }[];
  };
  t.equal(v1.ips[0].version, undefined, "1.0.0: no per-IP version");
  t.equal(v1.interfaces[0].mtu, undefined, "1.0.0: no interface mtu");
  const v11 = encodeResult(r, "1.1.0") as { interfaces: { mtu?: number }[] };
  t.equal(v11.interfaces[0].mtu, 1450, "1.1.0: interface mtu");
});

t.test("node state reader", async (t) => {
  t.same(parseEnvFile("A=1 # comment\n# x\nB = two\n"), { A: "1", B: "two" });
  const st = readNodeState(stateFile);
  t.match(st, { mtu: 1450, mode: "vxlan", bridge: "vxbr0", subnet: { len: 24 } });
  writeFileSync(join(dir, "bad.env"), "FLANNEL_NETWORK=nope\n");
  t.throws(() => readNodeState(join(dir, "bad.env")), /FLANNEL_NETWORK is not a prefix/);
});

t.test("the executable: slow path and the shim's socket path give the same answers", async (t) => {
  ensureCniBuilt();
  const stdin = conf({ cniVersion: "2.0.0" });
  const viaShim = (extra: Record<string, string>) =>
    spawnSync(SHIM, [], { input: stdin, env: { ...env(), ...extra }, encoding: "utf8" });
  const slow = viaShim({ VXTUN_CNI_SOCKET: join(dir, "nobody.sock") });
  t.equal(slow.status, 1, "slow path: exit 1");
  t.equal(JSON.parse(slow.stdout).code, 1, "slow path: error JSON on stdout");
  const socket = join(dir, "cni.sock");
  const server = await startCniServer({ socket, stateFile });
  t.teardown(() => server.close());
  // spawnSync would block the event loop that serves the socket: use the async form.
  const fast = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const p = execFile(SHIM, [], { env: { ...env(), VXTUN_CNI_SOCKET: socket } }, (err, out) =>
      resolve({ code: err ? Number(err.code) : 0, stdout: String(out) }),
    );
    p.stdin?.end(stdin);
  });
  t.equal(fast.code, 1, "through the server: exit 1");
  t.same(JSON.parse(fast.stdout), JSON.parse(slow.stdout), "same error JSON both ways");
});
