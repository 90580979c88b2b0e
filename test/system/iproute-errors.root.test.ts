// iproute2 failures get their kind in one place (ipErrorKind); callers only test the kind.
// The live cases provoke each failure with the real `ip`/`bridge` inside a namespace made
// for the test, so a changed message in a new iproute2 or kernel shows up here first.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import {
  addrAdd,
  bridge,
  IpError,
  type IpErrorKind,
  ip,
  ipBatch,
  linkDel,
  routeDel,
  unless,
} from "../../src/system/iproute.js";

/** The IpError a failing call rejects with. */
async function failure(p: Promise<unknown>): Promise<IpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof IpError) return e;
    throw e;
  }
  throw new Error("expected the command to fail");
}

t.test("live: each failure from the real tools gets its kind", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const ns = await lab.addNs("iperr");
  await ip(ns, ["link", "add", "br0", "type", "bridge"]);
  await ip(ns, ["link", "add", "ve0", "type", "veth", "peer", "name", "ve1"]);
  await addrAdd(ns, "br0", "10.9.0.1/24");
  await ip(ns, ["link", "set", "br0", "up"]);

  const cases: [string, () => Promise<unknown>, IpErrorKind][] = [
    ["adding a link that exists", () => ip(ns, ["link", "add", "br0", "type", "bridge"]), "exists"],
    ["adding an address twice", () => addrAdd(ns, "br0", "10.9.0.1/24"), "exists"],
    ["a route twice", () => ip(ns, ["route", "add", "10.9.0.0/24", "dev", "br0"]), "exists"],
    ["deleting a missing link", () => linkDel(ns, "nope0"), "not-found"],
    ["showing a missing link", () => ip(ns, ["link", "show", "dev", "nope0"]), "not-found"],
    [
      "a missing master",
      () => ip(ns, ["link", "set", "dev", "ve0", "master", "nobr"]),
      "not-found",
    ],
    [
      "deleting a missing address",
      () => ip(ns, ["addr", "del", "10.9.9.9/24", "dev", "br0"]),
      "not-found",
    ],
    ["deleting a missing route", () => routeDel(ns, { dst: "10.7.0.0/24" }), "not-found"],
    [
      "deleting a missing neighbour",
      () => ip(ns, ["neigh", "del", "10.9.0.9", "dev", "br0"]),
      "not-found",
    ],
    ["a missing pod namespace path", () => ip("/proc/2147483647/ns/net", ["link"]), "not-found"],
    ["a missing namespace name", () => ip(`${ns}-gone`, ["link"]), "not-found"],
    [
      "a batch stopping at an existing link",
      () =>
        ipBatch(ns, [
          ["link", "set", "dev", "br0", "up"],
          ["link", "add", "ve0", "type", "dummy"],
        ]),
      "exists",
    ],
    [
      "a batch stopping at a missing device",
      () =>
        ipBatch(ns, [
          ["link", "set", "dev", "br0", "up"],
          ["link", "del", "dev", "nope0"],
        ]),
      "not-found",
    ],
    [
      "fdb del on the bridge itself",
      () => bridge(ns, ["fdb", "del", "02:00:00:00:00:01", "dev", "br0", "master"]),
      "other",
    ],
  ];
  for (const [what, fn, kind] of cases) {
    const e = await failure(fn());
    t.equal(e.kind, kind, `${what}: ${e.detail}`);
    t.notMatch(e.detail, /Command failed/, "the batch line counter is not part of the detail");
  }

  // unless(): exactly the one kind passes, everything else still rejects.
  t.equal(await linkDel(ns, "nope0").catch(unless("not-found")), undefined);
  t.equal((await failure(linkDel(ns, "nope0").catch(unless("exists")))).kind, "not-found");
  await t.rejects(ip(ns, ["link", "add", "x", "type", "no-such-kind"]).catch(unless("exists")));
});
