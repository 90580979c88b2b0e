// The in-process IPAM (src/cni/host-local.ts) against the real host-local binary on the
// same directory: each sees the other's reservations, releases them by container ID and
// ifname, and the two never hand out one address twice, even racing each other.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { localAdd, localDel, localFind } from "../../src/cni/host-local.js";
import { formatIpv4, parseIpv4 } from "../../src/encap/addr.js";
import { run } from "../../src/system/exec.js";

const HOST_LOCAL = "/usr/lib/cni/host-local";
const range = {
  subnet: { addr: parseIpv4("10.66.1.0") as number, len: 24 },
  gateway: parseIpv4("10.66.1.1") as number,
};

function setup(t: { teardown: (fn: () => void) => void }) {
  const dataDir = mkdtempSync(join(tmpdir(), "vxtun-ipam-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const dir = join(dataDir, "net1");
  const conf = JSON.stringify({
    cniVersion: "1.0.0",
    name: "net1",
    ipam: {
      type: "host-local",
      ranges: [[{ subnet: "10.66.1.0/24", gateway: "10.66.1.1" }]],
      dataDir,
    },
  });
  const hostLocal = async (cmd: "ADD" | "DEL", id: string, ifname = "eth0") => {
    const r = await run([HOST_LOCAL], {
      input: conf,
      env: {
        CNI_COMMAND: cmd,
        CNI_CONTAINERID: id,
        CNI_IFNAME: ifname,
        CNI_NETNS: "/nonexistent",
        CNI_PATH: "/usr/lib/cni",
      },
    });
    if (r.code !== 0) throw new Error(`host-local ${cmd}: ${r.stdout}${r.stderr}`);
    return cmd === "ADD"
      ? (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0].address.split("/")[0]
      : "";
  };
  return { dir, hostLocal };
}

t.test(
  "same files, both ways",
  { skip: !existsSync(HOST_LOCAL) && "needs host-local" },
  async (t) => {
    const { dir, hostLocal } = setup(t);
    const a = formatIpv4(await localAdd(dir, "ctr-a", "eth0", range));
    t.equal(a, "10.66.1.2", "first address after the gateway");
    t.equal(readFileSync(join(dir, a), "utf8"), "ctr-a\r\neth0", "host-local's lease format");
    t.equal(readFileSync(join(dir, "last_reserved_ip.0"), "utf8"), a);
    const b = await hostLocal("ADD", "ctr-b");
    t.equal(b, "10.66.1.3", "host-local continues after our reservation");
    const c = formatIpv4(await localAdd(dir, "ctr-c", "eth0", range));
    t.equal(c, "10.66.1.4", "and we after host-local's");
    t.equal(localFind(dir, "ctr-b", "eth0"), b, "we see host-local's lease");
    await t.rejects(localAdd(dir, "ctr-b", "eth0", range), /duplicate allocation/);
    await hostLocal("DEL", "ctr-a");
    t.notOk(existsSync(join(dir, a)), "host-local releases our lease");
    await localDel(dir, "ctr-b", "eth0");
    t.notOk(existsSync(join(dir, b)), "we release host-local's");
    await localDel(dir, "ctr-b", "eth0"); // twice: still fine
    t.equal(localFind(dir, "ctr-c", "eth0"), c);
  },
);

t.test(
  "20 of ours and 5 host-local processes at once: no duplicate",
  { skip: !existsSync(HOST_LOCAL) && "needs host-local" },
  async (t) => {
    const { dir, hostLocal } = setup(t);
    const ours = Array.from({ length: 20 }, (_, i) =>
      localAdd(dir, `ours-${i}`, "eth0", range).then(formatIpv4),
    );
    const theirs = Array.from({ length: 5 }, (_, i) => hostLocal("ADD", `theirs-${i}`));
    const all = await Promise.all([...ours, ...theirs]);
    t.equal(new Set(all).size, 25, "25 distinct addresses");
    t.notOk(all.includes("10.66.1.1"), "never the gateway");
  },
);

t.test("a full range says so; the broadcast address is never handed out", async (t) => {
  const { dir } = setup(t);
  const small = {
    subnet: { addr: parseIpv4("10.66.2.0") as number, len: 29 },
    gateway: parseIpv4("10.66.2.1") as number,
  };
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push(formatIpv4(await localAdd(dir, `c${i}`, "eth0", small)));
  t.same(got, ["10.66.2.2", "10.66.2.3", "10.66.2.4", "10.66.2.5", "10.66.2.6"]);
  await t.rejects(
    localAdd(dir, "c9", "eth0", small),
    /no IP addresses available in range set: 10.66.2.1-10.66.2.6/,
  );
  await localDel(dir, "c1", "eth0");
  t.equal(
    formatIpv4(await localAdd(dir, "c9", "eth0", small)),
    "10.66.2.3",
    "a released address comes back",
  );
});

t.test("leases live on disk only: a fresh process (a restarted agent) keeps them", async (t) => {
  const { dir } = setup(t);
  const before = formatIpv4(await localAdd(dir, "ctr-old", "eth0", range));
  const mod = new URL("../../src/cni/host-local.ts", import.meta.url).pathname;
  const child = await run([
    process.execPath,
    "--import",
    "tsx",
    "--input-type=module",
    "-e",
    `const m = await import(${JSON.stringify(mod)});
     const ip = await m.localAdd(${JSON.stringify(dir)}, "ctr-new", "eth0", ${JSON.stringify(range)});
     console.log(m.localFind(${JSON.stringify(dir)}, "ctr-old", "eth0") + " " + ip);`,
  ]);
  t.equal(child.code, 0, child.stderr);
  const [seen, ip] = child.stdout.trim().split(" ");
  t.equal(seen, before, "the new process sees the old lease");
  t.not(formatIpv4(Number(ip)), before, "and does not hand its address out again");
});
