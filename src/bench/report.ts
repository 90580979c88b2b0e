// Where results go: one folder with the raw JSON, a Markdown table and a chart, named
// so that the latest run of each kind can be committed under bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildCommit, VERSION } from "../cli/version.js";
import { renderChart, type VegaLiteSpec } from "./chart.js";

export interface WrittenReport {
  json: string;
  markdown: string;
  png: string;
}

export async function writeReport(
  dir: string,
  name: string,
  data: unknown,
  markdown: string,
  chart: VegaLiteSpec,
): Promise<WrittenReport> {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  // Which vxtun produced the figures: the version and the commit, first in the file.
  const record = { vxtun: { version: VERSION, commit: buildCommit() }, ...(data as object) };
  writeFileSync(json, `${JSON.stringify(record, null, 2)}\n`);
  return { json, ...(await writeViews(dir, name, markdown, chart)) };
}

/** The Markdown table and the chart (also redrawn alone from a saved JSON). */
export async function writeViews(
  dir: string,
  name: string,
  markdown: string,
  chart: VegaLiteSpec,
): Promise<{ markdown: string; png: string }> {
  const out = { markdown: join(dir, `${name}.md`), png: join(dir, `${name}.png`) };
  writeFileSync(out.markdown, `${markdown}\n`);
  const { png } = await renderChart(chart);
  writeFileSync(out.png, png);
  return out;
}
