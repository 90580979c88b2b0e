// The fast path allocates nothing per packet once warm: bench/fastpath-alloc.ts drives
// the real Forwarder (TSO and USO super-packets out, UDP_GRO datagrams of TCP segments
// and of UDP datagrams in, single small packets both ways, a small IPv6 packet out, an
// IPv6 TSO6 super-packet out and a UDP_GRO datagram of IPv6 TCP segments in)
// with counting sinks and reports young-generation bytes per call, with a
// young generation large enough that no GC runs while it measures (the least of three
// windows after a warm-up). A HeapNumber boxed per call would show as >= 12 bytes.
// Old and code space are not counted: under CPU contention V8 compiles and deoptimizes
// late, which grew them by up to 20 bytes per call in all three windows (a CI failure).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { REPO } from "../fixtures/vxtun.js";

t.test("no heap allocation per packet on the fast path (steady state)", async (t) => {
  const r = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--min-semi-space-size=64",
      "--max-semi-space-size=64",
      "--import",
      "tsx",
      join(REPO, "bench/fastpath-alloc.ts"),
      "10000",
      "30000",
    ],
    { cwd: REPO, encoding: "utf8", timeout: 120_000 },
  );
  t.equal(r.status, 0, r.stderr);
  const lines = [...r.stdout.matchAll(/^(.+): ([\d.-]+) heap bytes per call/gm)];
  t.equal(lines.length, 9, `nine measurements:\n${r.stdout}`);
  for (const [, name, bytes] of lines) {
    t.ok(Number(bytes) < 8, `${name}: ${bytes} bytes per call`);
  }
  t.match(r.stdout, /drops \[\]/, "nothing was dropped (every round took the path it measures)");
  t.match(r.stdout, /udp [1-9]\d* \(/, "received UDP datagrams were merged (the path measured)");
  t.match(r.stdout, /bad inner checksums 0/, "every inner checksum verified");
});
