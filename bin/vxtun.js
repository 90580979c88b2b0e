#!/usr/bin/env -S node --no-memory-reducer
// Entry point: the compiled CLI (npm run build writes dist/). --no-memory-reducer keeps
// V8 from compacting the heap in the middle of traffic (see src/dataplane/dataplane.ts).
import("../dist/cli/main.js").then((m) => m.main(process.argv));
