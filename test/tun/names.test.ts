// Interface names are validated before /dev/net/tun is touched, so a bad name fails the
// same way with or without root: a one-line error naming the problem.
import t from "tap";
import { Slab } from "../../src/io/slab.js";
import { Device, validateIfName } from "../../src/tun/device.js";

t.test("invalid interface names fail with a one-line error naming the problem", async (t) => {
  const slab = new Slab({ count: 4 });
  const cases: [string, RegExp][] = [
    ["bad name", /contains whitespace/],
    ["a".repeat(16), /16 bytes long, at most 15/],
    ["é".repeat(8), /16 bytes long/],
    ["a/b", /contains '\/'/],
    ["a:b", /contains ':'/],
    ["", /empty/],
    ["vx%s", /single %d template/],
    ["vx%d%d", /single %d template/],
  ];
  for (const [name, re] of cases) {
    t.throws(() => Device.open({ kind: "tun", name, slab }), re, JSON.stringify(name));
    try {
      validateIfName(name);
    } catch (e) {
      t.notOk((e as Error).message.includes("\n"), "one line");
    }
  }
  t.throws(() => validateIfName("vxt%d", false), /contains '%'/);
  t.doesNotThrow(() => validateIfName("vxt%d"));
});
