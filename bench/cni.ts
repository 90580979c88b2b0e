// CNI ADD/DEL latency through libcni (the Go driver times each call): vxtun through the
// native shim and the agent's socket, vxtun's Node slow path, and the reference
// bridge + host-local, all in one run on one node namespace, ratios to the reference.
// Writes bench/results/cni.{md,json}. Needs root.
//   node --import tsx bench/cni.ts [cycles=50]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { NetnsLab, netnsUnavailableReason } from "../src/lab/netns.js";
import {
  buildDriver,
  driver,
  ensureCniBuilt,
  makeBinDir,
  startCniServerIn,
  writeConflist,
  writeState,
} from "../test/fixtures/cni.js";

const WARMUP = 5;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main(): Promise<void> {
  const why = netnsUnavailableReason();
  if (why) throw new Error(`bench/cni.ts ${why}`);
  const cycles = Number(process.argv[2] ?? 50);
  const drv = buildDriver();
  if ("skip" in drv) throw new Error(drv.skip);
  ensureCniBuilt();
  const dir = mkdtempSync(join(tmpdir(), "vxtun-cni-bench-"));
  const lab = await NetnsLab.create();
  try {
    const bin = makeBinDir(dir);
    const node = await lab.addNs("n1");
    const pod = await lab.addNs("p1");
    const stateFile = join(dir, "subnet.env");
    const agentSocket = join(dir, "cni.sock");
    writeState(stateFile, { node: 1 });
    const fast = join(dir, "fast.conflist");
    writeConflist(fast, { stateFile, dataDir: join(dir, "ipam-fast"), agentSocket });
    const slow = join(dir, "slow.conflist");
    writeConflist(slow, {
      stateFile,
      dataDir: join(dir, "ipam-slow"),
      agentSocket: join(dir, "no-agent.sock"),
    });
    const ref = join(dir, "ref.conflist");
    writeFileSync(
      ref,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "vxtun-test",
        plugins: [
          {
            type: "bridge",
            bridge: "cni0",
            isGateway: true,
            mtu: 1450,
            ipam: {
              type: "host-local",
              ranges: [[{ subnet: "10.244.9.0/24" }]],
              dataDir: join(dir, "ipam-ref"),
            },
          },
        ],
      }),
    );
    await startCniServerIn(lab, node, agentSocket);
    const shapes: [string, string][] = [
      ["vxtun: shim + agent socket", fast],
      ["vxtun: Node slow path", slow],
      ["reference bridge + host-local", ref],
    ];
    const rows: { name: string; add: number[]; del: number[] }[] = [];
    for (const [name, conflist] of shapes) {
      const r = await driver(lab, node, drv.path, bin, join(dir, "cache"), [
        "cycle",
        conflist,
        `/run/netns/${pod}`,
        String(cycles + WARMUP),
      ]);
      if (r.code !== 0) throw new Error(`${name}: ${r.stdout}${r.stderr}`);
      const t = JSON.parse(r.stdout) as { add: number[]; del: number[] };
      rows.push({ name, add: t.add.slice(WARMUP), del: t.del.slice(WARMUP) });
    }
    const stats = rows.map((row) => ({
      name: row.name,
      add: { p50: pct(row.add, 50), p95: pct(row.add, 95) },
      del: { p50: pct(row.del, 50), p95: pct(row.del, 95) },
    }));
    const [r] = stats.slice(-1);
    const f = (x: number) => x.toFixed(1);
    const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    const md = [
      `CNI latency through libcni, ${cycles} ADD+DEL cycles each (ms; ratio to the reference in the same run)`,
      "",
      "| plugin | ADD p50 | ADD p95 | DEL p50 | DEL p95 |",
      "|---|---:|---:|---:|---:|",
      ...stats.map(
        (s) =>
          `| ${s.name} | ${f(s.add.p50)} (${x(s.add.p50, r.add.p50)}) | ${f(s.add.p95)} (${x(s.add.p95, r.add.p95)}) | ${f(s.del.p50)} (${x(s.del.p50, r.del.p50)}) | ${f(s.del.p95)} (${x(s.del.p95, r.del.p95)}) |`,
      ),
      "",
      `Linux ${release()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}: \`node --import tsx bench/cni.ts ${cycles}\``,
    ].join("\n");
    console.log(`\n${md}`);
    const out = resolve(import.meta.dirname, "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "cni.md"), `${md}\n`);
    writeFileSync(
      join(out, "cni.json"),
      `${JSON.stringify({ cycles, kernel: release(), node: process.version, date: new Date().toISOString(), rows: stats, raw: rows, reference: r.name }, null, 2)}\n`,
    );
  } finally {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
