// The IPv6 neighbour table: resolve() (allocation-free, through a hash of the address)
// agrees with add/replace/del, also for many entries and after changes.
import t from "tap";
import { parseIpv6 } from "../../src/encap/addr6.js";
import { Neigh6Table } from "../../src/fdb/neigh6.js";

t.test("resolve follows add, replace and del", async (t) => {
  const n = new Neigh6Table();
  const a = parseIpv6("fd00::2")!;
  t.equal(n.resolve(a), -1, "empty: no entry");
  n.add("fd00::2", "02:00:00:00:00:02");
  t.equal(n.resolve(a), 0x020000000002, "added");
  // The address at an offset inside a bigger buffer (a packet's target field).
  const pkt = new Uint8Array(64);
  pkt.set(a, 30);
  t.equal(n.resolve(pkt, 30), 0x020000000002, "found at an offset");
  n.replace("fd00::2", "02:00:00:00:00:03");
  t.equal(n.resolve(a), 0x020000000003, "replaced");
  t.equal(n.size, 1, "replace keeps one entry");
  n.del("fd00::2");
  t.equal(n.resolve(a), -1, "deleted");
  t.throws(() => n.del("fd00::2"), /no neighbour fd00::2/, "deleting twice names the address");
});

t.test("a thousand entries resolve to their own MACs", async (t) => {
  const n = new Neigh6Table();
  for (let i = 0; i < 1000; i++) n.add(`fd00::${i.toString(16)}`, 0x020000000000 + i);
  let bad = 0;
  for (let i = 0; i < 1000; i++) {
    if (n.resolve(parseIpv6(`fd00::${i.toString(16)}`)!) !== 0x020000000000 + i) bad++;
  }
  t.equal(bad, 0, "every entry found");
  t.equal(n.resolve(parseIpv6("fd00::1:0")!), -1, "a neighbour not in the table misses");
  for (let i = 0; i < 1000; i += 2) n.del(`fd00::${i.toString(16)}`);
  let left = 0;
  for (let i = 0; i < 1000; i++) if (n.resolve(parseIpv6(`fd00::${i.toString(16)}`)!) >= 0) left++;
  t.equal(left, 500, "deleting half leaves the other half");
});
