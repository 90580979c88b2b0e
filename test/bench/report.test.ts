// Benchmark reports without a lab: the JSON records which vxtun made it (version and
// commit), `--from` redraws table and chart from a saved JSON without running anything,
// and the charts carry what a reader needs: bench.png the single runs beside the
// medians with a legend and the whole title; mtu-sweep.png whole row labels.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { renderChart } from "../../src/bench/chart.js";
import { sweepChart } from "../../src/bench/mtu-sweep.js";
import { type OverlayBenchResult, overlayChart } from "../../src/bench/overlay.js";
import { writeReport } from "../../src/bench/report.js";
import { main } from "../../src/cli/main.js";
import { VERSION } from "../../src/cli/version.js";
import { REPO } from "../fixtures/vxtun.js";

const dir = mkdtempSync(join(tmpdir(), "vxtun-report-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const saved = (name: string) =>
  JSON.parse(readFileSync(join(REPO, "bench/results", `${name}.json`), "utf8"));

/** The SVG's text elements, as drawn. */
const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

t.test("the JSON names the vxtun version and commit", async (t) => {
  const r = saved("bench") as OverlayBenchResult;
  const files = await writeReport(dir, "bench", r, "table", overlayChart(r));
  const json = JSON.parse(readFileSync(files.json, "utf8"));
  t.equal(json.vxtun.version, VERSION);
  t.match(json.vxtun.commit, /^[0-9a-f]{7,}$|^unknown$/);
  t.same(json.runs, r.runs, "the results themselves unchanged");
  t.ok(readFileSync(files.png).subarray(1, 4).toString() === "PNG", "a PNG");
});

t.test("bench chart: runs as dots over the median bars, a legend, the whole title", async (t) => {
  const r = saved("bench") as OverlayBenchResult;
  const { svg } = await renderChart(overlayChart(r));
  const drawn = texts(svg);
  t.ok(drawn.includes("vxtun overlay benchmark"), "title");
  t.ok(
    drawn.some((s) => s.startsWith(`bars: median of ${r.options.reps} runs`)),
    "subtitle says what bars and dots are",
  );
  for (const entry of ["vxtun, median", "kernel vxlan (reference), median", "one run"]) {
    t.ok(drawn.includes(entry), `legend: ${entry}`);
  }
  // Every run is a dot: vega draws points as paths with the run colour.
  const dots = svg.match(/fill="#1b1b1b"/g)?.length ?? 0;
  const values = r.runs.reduce((n, x) => n + Object.keys(x.metrics).length, 0);
  t.ok(dots >= values, `${dots} dots for ${values} single-run values`);
  const title = /<text[^>]*transform="translate\(([-\d.]+),([-\d.]+)\)"[^>]*>vxtun overlay/.exec(
    svg,
  );
  t.ok(title && Number(title[1]) >= 0 && Number(title[2]) >= 0, "title inside the image");
  t.notOk(
    drawn.some((s) => s.endsWith("…")),
    "no label cut short",
  );
});

t.test("mtu-sweep chart: whole row labels", async (t) => {
  const { svg } = await renderChart(sweepChart(saved("mtu-sweep")));
  const drawn = texts(svg);
  t.ok(drawn.includes("vxtun-vxlan-outer DF off"), "the longest row label, whole");
  t.notOk(
    drawn.some((s) => s.endsWith("…")),
    "no label cut short",
  );
});

t.test("--from redraws table and chart beside a saved JSON, running nothing", async (t) => {
  for (const name of ["bench", "mtu-sweep"]) {
    const from = join(dir, `${name}.json`);
    copyFileSync(join(REPO, "bench/results", `${name}.json`), from);
    rmSync(join(dir, `${name}.png`), { force: true });
    process.exitCode = 0;
    await main([process.execPath, "vxtun", name, "--from", from]);
    t.equal(process.exitCode, 0, `${name} --from exits 0`);
    t.ok(existsSync(join(dir, `${name}.png`)), `${name}.png drawn`);
    t.equal(
      readFileSync(join(dir, `${name}.md`), "utf8"),
      readFileSync(join(REPO, "bench/results", `${name}.md`), "utf8"),
      `${name}.md as committed`,
    );
  }
});
