// A reservation is never an empty file: the owner is written to a temporary first and
// linked to the address name, so a plugin killed mid-ADD (the soak's SIGKILL into an ADD
// once left an empty reservation no container owned, a leaked address) leaves only a
// temporary, which the next reservation removes and nothing takes for an address.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { localAdd, localDel, localFind } from "../../src/cni/host-local.js";
import { hostLocalLeases } from "../../src/cni/ipam.js";
import { formatIpv4, parseIpv4 } from "../../src/encap/addr.js";

const range = {
  subnet: { addr: parseIpv4("10.66.2.0") as number, len: 24 },
  gateway: parseIpv4("10.66.2.1") as number,
};

t.test("reservations are whole, temporaries of a killed plugin are swept", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-ipam-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // What a plugin killed between writing its temporary and linking it leaves behind.
  writeFileSync(join(dir, ".reserving-999999"), "dead\r\neth0");
  t.same(hostLocalLeases(dir), [], "a temporary is not a lease");
  t.equal(localFind(dir, "dead", "eth0"), undefined, "nor an address of its owner");

  const ip = formatIpv4(await localAdd(dir, "c1", "eth0", range));
  t.equal(ip, "10.66.2.2");
  t.equal(readFileSync(join(dir, ip), "utf8"), "c1\r\neth0", "host-local's content, whole");
  t.same(
    readdirSync(dir).filter((f) => f.startsWith(".")),
    [],
    "no temporary left, the dead one swept",
  );
  const ip2 = formatIpv4(await localAdd(dir, "c2", "eth0", range));
  t.equal(ip2, "10.66.2.3", "a taken address is skipped (link refuses an existing name)");
  await t.rejects(localAdd(dir, "c1", "eth0", range), /duplicate allocation/);
  await localDel(dir, "c1", "eth0");
  await localDel(dir, "c2", "eth0");
  t.same(
    readdirSync(dir).filter((f) => /^\d/.test(f)),
    [],
    "both released",
  );
});
