// `vxtun bench --quick` and `vxtun mtu-sweep --quick` on a tiny budget: they must run
// end to end and produce well-formed JSON, Markdown and a PNG chart (figures are not
// asserted: performance lives in bench/, not in tests).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { listLabNamespaces, skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { CLI } from "../fixtures/vxtun.js";

const PNG = [0x89, 0x50, 0x4e, 0x47];

function tmp(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "vxtun-bench-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test("vxtun bench --quick", async (t) => {
  if (skipUnlessRoot(t)) return;
  const out = tmp(t);
  const before = await listLabNamespaces();
  const r = await run([...CLI, "bench", "--quick", "--out", out], { timeoutMs: 240_000 });
  t.equal(r.code, 0, r.code === 0 ? "exits 0" : r.stderr.slice(-2000));
  const j = JSON.parse(readFileSync(join(out, "bench.json"), "utf8"));
  t.same(j.options.paths, [
    "underlay",
    "kernel-vxlan",
    "vxtun-vxlan",
    "vxtun-vxlan-nooffload",
    "vxtun-vxlan-l2",
    "vxtun-ipip",
    "kernel-vxlan-ipv6",
    "vxtun-vxlan-ipv6",
    "vxtun-ipip-ipv6",
  ]);
  t.type(j.machine.cpus, "number");
  for (const p of j.options.paths) {
    t.ok(j.median[p].tcp1_gbps > 0, `${p}: a TCP figure`);
    t.ok(j.median[p].ping_p50_ms > 0, `${p}: a ping figure`);
  }
  t.ok(j.ratio["vxtun-vxlan"].tcp1_gbps > 0, "ratios to kernel vxlan");
  // IPv6 rows: ratios to the kernel's vxlan with IPv6 pods, measured in the same run.
  t.equal(
    j.ratio["vxtun-vxlan-ipv6"].tcp1_gbps,
    j.median["vxtun-vxlan-ipv6"].tcp1_gbps / j.median["kernel-vxlan-ipv6"].tcp1_gbps,
    "IPv6 ratios to kernel-vxlan-ipv6",
  );
  t.equal(j.ratio["kernel-vxlan-ipv6"].tcp1_gbps, 1, "the IPv6 reference is its own");
  t.match(readFileSync(join(out, "bench.md"), "utf8"), /\| vxtun-ipip \|/);
  t.same([...readFileSync(join(out, "bench.png")).subarray(0, 4)], PNG, "a PNG chart");
  t.same(await listLabNamespaces(), before, "no namespace left behind");
});

t.test("vxtun mtu-sweep --quick", async (t) => {
  if (skipUnlessRoot(t)) return;
  const out = tmp(t);
  const r = await run([...CLI, "mtu-sweep", "--quick", "--out", out], { timeoutMs: 120_000 });
  t.equal(r.code, 0, r.code === 0 ? "exits 0" : r.stderr.slice(-2000));
  const j = JSON.parse(readFileSync(join(out, "mtu-sweep.json"), "utf8"));
  t.ok(j.probes.length >= 6);
  for (const p of j.probes) t.match(p.outcome, /^(delivered|frag-needed|local-error|lost)$/);
  const over = j.probes.find((p: { df: boolean; label: string }) => p.df && p.label === "T+1");
  t.equal(over.outcome, "frag-needed", "DF and one byte over the tunnel MTU: frag-needed");
  t.equal(over.mtu, over.tunnelMtu, "with the tunnel MTU");
  t.same([...readFileSync(join(out, "mtu-sweep.png")).subarray(0, 4)], PNG);
});
