// iperf3/ping through every path, side by side: `node --import tsx bench/overlay.ts
// [--reps N] [--seconds S] [--quick] [--paths a,b]` (root). Prints a Markdown table.
import { parseArgs } from "node:util";
import { overlayMarkdown, PATHS, type PathName, runOverlayBench } from "../src/bench/overlay.js";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    quick: { type: "boolean", default: false },
    paths: { type: "string", default: PATHS.join(",") },
    json: { type: "boolean", default: false },
  },
});
const result = await runOverlayBench({
  reps: Number(values.reps),
  seconds: Number(values.seconds),
  quick: values.quick,
  paths: values.paths.split(",") as PathName[],
  onProgress: (done, total, what) => process.stderr.write(`[${done}/${total}] ${what}\n`),
});
console.log(values.json ? JSON.stringify(result, null, 2) : overlayMarkdown(result));
for (const r of result.runs)
  if (r.errors.length) console.error(`${r.path} #${r.rep}: ${r.errors.join("; ")}`);
