// Charts for benchmark and sweep reports: a Vega-Lite spec compiled and rendered to SVG
// headlessly, then rasterised to PNG with resvg (no browser, no canvas build).
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vl from "vega-lite";

export type VegaLiteSpec = vl.TopLevelSpec;

export async function renderChart(spec: VegaLiteSpec): Promise<{ svg: string; png: Buffer }> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG(2);
  view.finalize();
  const png = new Resvg(svg, {
    background: "white",
    font: { loadSystemFonts: true },
  })
    .render()
    .asPng();
  return { svg, png: Buffer.from(png) };
}
