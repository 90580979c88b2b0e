// `vxtun bench` and `vxtun mtu-sweep`: validate the options, run with a progress
// display, write JSON + Markdown + chart, print the table.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { UserError } from "../api/errors.js";
import { netnsUnavailableReason } from "../lab/netns.js";
import type { VegaLiteSpec } from "./chart.js";
import {
  runMtuSweep,
  SWEEP_PATHS,
  type SweepPath,
  sweepChart,
  sweepMarkdown,
} from "./mtu-sweep.js";
import { overlayChart, overlayMarkdown, PATHS, type PathName, runOverlayBench } from "./overlay.js";
import { type ProgressFn, progressDisplay } from "./progress.js";
import { writeReport, writeViews } from "./report.js";

function requireLab(): void {
  const why = netnsUnavailableReason();
  if (why) throw new UserError(`this builds a lab of network namespaces and ${why}`);
}

/**
 * Run in a lab with a progress display, write `<out>/<name>.{json,md,png}` and print
 * the table (and any runs' errors as warnings). With `from` (a saved JSON), nothing
 * runs: the table and the chart beside it are drawn again from it.
 */
async function runAndReport<R>(
  name: string,
  o: { out: string; from?: string },
  run: (onProgress: ProgressFn) => Promise<R>,
  markdown: (r: R) => string,
  chart: (r: R) => VegaLiteSpec,
  warnings: (r: R) => string[] = () => [],
): Promise<void> {
  if (o.from) {
    let saved: R;
    try {
      saved = JSON.parse(readFileSync(o.from, "utf8")) as R;
    } catch (e) {
      throw new UserError(`cannot read ${o.from}: ${(e as Error).message.split("\n")[0]}`);
    }
    const files = await writeViews(dirname(o.from), name, markdown(saved), chart(saved));
    console.log(`wrote ${files.markdown}, ${files.png} from ${o.from}`);
    return;
  }
  requireLab();
  const progress = progressDisplay(name);
  let result: R;
  try {
    result = await run(progress.update);
  } finally {
    progress.stop();
  }
  const md = markdown(result);
  const files = await writeReport(o.out, name, result, md, chart(result));
  console.log(md);
  for (const w of warnings(result)) console.error(`warning: ${w}`);
  console.log(`\nwrote ${files.json}, ${files.markdown}, ${files.png}`);
}

function pickList<T extends string>(
  text: string | undefined,
  allowed: readonly T[],
  what: string,
): T[] | undefined {
  if (!text) return undefined;
  const items = text.split(",").map((s) => s.trim());
  const bad = items.find((s) => !allowed.includes(s as T));
  if (bad) throw new UserError(`unknown ${what} "${bad}": choose from ${allowed.join(", ")}`);
  return items as T[];
}

function positiveInt(text: string, what: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UserError(`${what} must be a whole number from 1 to ${max}, not "${text}"`);
  return n;
}

export async function runBenchCommand(o: {
  quick?: boolean;
  reps: string;
  seconds: string;
  paths?: string;
  out: string;
  from?: string;
}): Promise<void> {
  const paths = pickList<PathName>(o.paths, PATHS, "path");
  const reps = o.quick ? 1 : positiveInt(o.reps, "--reps", 20);
  const seconds = o.quick ? 1 : positiveInt(o.seconds, "--seconds", 60);
  await runAndReport(
    "bench",
    o,
    (onProgress) => runOverlayBench({ paths, reps, seconds, quick: !!o.quick, onProgress }),
    overlayMarkdown,
    overlayChart,
    (r) =>
      r.runs
        .filter((x) => x.errors.length)
        .map((x) => `${x.path} run ${x.rep}: ${x.errors.join("; ")}`),
  );
}

export async function runSweepCommand(o: {
  quick?: boolean;
  paths?: string;
  mtus: string;
  out: string;
  from?: string;
}): Promise<void> {
  const paths = pickList<SweepPath>(o.paths, SWEEP_PATHS, "path");
  const mtus =
    o.quick && o.mtus === "1500,1400,9000"
      ? [1500]
      : o.mtus.split(",").map((m) => positiveInt(m.trim(), "an MTU", 65_535));
  if (mtus.some((m) => m < 576))
    throw new UserError("underlay MTUs below 576 leave no room for a tunnel");
  await runAndReport(
    "mtu-sweep",
    o,
    (onProgress) => runMtuSweep({ paths, underlayMtus: mtus, quick: !!o.quick, onProgress }),
    sweepMarkdown,
    sweepChart,
  );
}
