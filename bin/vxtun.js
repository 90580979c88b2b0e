#!/usr/bin/env -S node --no-memory-reducer --min-semi-space-size=16
// Entry point: the bundled CLI (npm run build writes dist/bundle/; scripts/bundle.mjs
// says why). The flags keep V8 from pausing the dataplane for GC in the middle of
// traffic: DATAPLANE_NODE_FLAGS in src/dataplane/dataplane.ts.
import("../dist/bundle/main.js").then((m) => m.main(process.argv));
