// Bundles the compiled CLI (dist/cli/main.js) and the forwarding-queue worker into
// dist/bundle/, which bin/vxtun.js and the agents a lab starts run.
//
// Why: an agent restarted by its supervisor forwards nothing until Node has loaded it, and
// loading ~300 modules one file at a time (resolution, package.json lookups, one compile
// each) was most of that time. One bundle with shared chunks loads the same code from a
// dozen files; commands that are not the agent (bench, lab, charts) stay in chunks of
// their own, loaded only when run.
//
// dist/bundle/ sits two folders below the package root like dist/cli/, so the paths the
// code finds from import.meta.url (build/Release for the addon, package.json, dist/cni)
// are the same bundled or not.
import { rm } from "node:fs/promises";
import { build } from "esbuild";

const outdir = "dist/bundle";
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: ["dist/cli/main.js", "dist/dataplane/queue-worker.js"],
  entryNames: "[name]",
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Whitespace and syntax only: names stay as written, so stack traces and logs read
  // the same as from dist/.
  minifyWhitespace: true,
  minifySyntax: true,
  // Loaded from node_modules at run time: a prebuilt native module (resvg), and what only
  // some commands load (etcd3 for an etcd store, vega for charts), which would only
  // make the package bigger here.
  external: ["@resvg/resvg-js", "etcd3", "vega", "vega-lite"],
  // CommonJS dependencies call require() for Node's own modules; ESM has none.
  banner: {
    js: "import { createRequire as __vxtunRequire } from 'node:module'; const require = __vxtunRequire(import.meta.url);",
  },
  logLevel: "warning",
});
