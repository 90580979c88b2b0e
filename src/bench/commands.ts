// `vxtun bench` and `vxtun mtu-sweep`: validate the options, run with a progress
// display, write JSON + Markdown + chart, print the table.
import { UserError } from "../api/errors.js";
import { netnsUnavailableReason } from "../lab/netns.js";
import {
  runMtuSweep,
  SWEEP_PATHS,
  type SweepPath,
  sweepChart,
  sweepMarkdown,
} from "./mtu-sweep.js";
import { overlayChart, overlayMarkdown, PATHS, type PathName, runOverlayBench } from "./overlay.js";
import { progressDisplay } from "./progress.js";
import { writeReport } from "./report.js";

function requireLab(): void {
  const why = netnsUnavailableReason();
  if (why) throw new UserError(`this builds a lab of network namespaces and ${why}`);
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
}): Promise<void> {
  const paths = pickList<PathName>(o.paths, PATHS, "path");
  const reps = o.quick ? 1 : positiveInt(o.reps, "--reps", 20);
  const seconds = o.quick ? 1 : positiveInt(o.seconds, "--seconds", 60);
  requireLab();
  const progress = progressDisplay("bench");
  let result: Awaited<ReturnType<typeof runOverlayBench>>;
  try {
    result = await runOverlayBench({
      paths,
      reps,
      seconds,
      quick: !!o.quick,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
  }
  const md = overlayMarkdown(result);
  const files = await writeReport(o.out, "bench", result, md, overlayChart(result));
  console.log(md);
  for (const r of result.runs)
    if (r.errors.length) console.error(`warning: ${r.path} run ${r.rep}: ${r.errors.join("; ")}`);
  console.log(`\nwrote ${files.json}, ${files.markdown}, ${files.png}`);
}

export async function runSweepCommand(o: {
  quick?: boolean;
  paths?: string;
  mtus: string;
  out: string;
}): Promise<void> {
  const paths = pickList<SweepPath>(o.paths, SWEEP_PATHS, "path");
  const mtus =
    o.quick && o.mtus === "1500,1400,9000"
      ? [1500]
      : o.mtus.split(",").map((m) => positiveInt(m.trim(), "an MTU", 65_535));
  if (mtus.some((m) => m < 576))
    throw new UserError("underlay MTUs below 576 leave no room for a tunnel");
  requireLab();
  const progress = progressDisplay("mtu-sweep");
  let result: Awaited<ReturnType<typeof runMtuSweep>>;
  try {
    result = await runMtuSweep({
      paths,
      underlayMtus: mtus,
      quick: !!o.quick,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
  }
  const md = sweepMarkdown(result);
  const files = await writeReport(o.out, "mtu-sweep", result, md, sweepChart(result));
  console.log(md);
  console.log(`wrote ${files.json}, ${files.markdown}, ${files.png}`);
}
