// Where results go: one folder with the raw JSON, a Markdown table and a chart, named
// so that the latest run of each kind can be committed under bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
  const out = {
    json: join(dir, `${name}.json`),
    markdown: join(dir, `${name}.md`),
    png: join(dir, `${name}.png`),
  };
  writeFileSync(out.json, `${JSON.stringify(data, null, 2)}\n`);
  writeFileSync(out.markdown, `${markdown}\n`);
  const { png } = await renderChart(chart);
  writeFileSync(out.png, png);
  return out;
}
