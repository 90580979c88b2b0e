import t from "tap";
import { listLabNamespaces, NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";

t.test("namespaces and veths are created, reachable, and removed at cleanup", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create();
  let a = "";
  try {
    a = await lab.addNs("a");
    const b = await lab.addNs("b");
    t.match(a, /^vxt-[0-9a-f]{6}-a$/);
    await lab.veth(a, "ua", b, "ub", { cidrA: "198.18.0.1/24", cidrB: "198.18.0.2/24" });
    const ping = await lab.exec(a, ["ping", "-c", "1", "-W", "2", "198.18.0.2"]);
    t.equal(ping.code, 0, "ping crosses the veth between the two namespaces");
    const rootLinks = await run(["ip", "-o", "link", "show"]);
    t.notMatch(rootLinks.stdout, /\bua\b|\bub\b/, "no link of ours appears in the root namespace");
    t.ok((await listLabNamespaces()).includes(a));
  } finally {
    await lab.cleanup();
  }
  t.notOk((await listLabNamespaces()).includes(a), "cleanup removed the namespaces");
});

t.test("bad names are refused with a one-line error", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  await t.rejects(lab.addNs("bad name; rm -rf /"), /invalid namespace name/);
});
