#!/usr/bin/env node
// The plugin as a Node executable: the slow path the native shim execs when the agent's
// socket does not answer (and what CNI_PATH can point at directly, without the shim).
import { readFileSync, writeSync } from "node:fs";
import { stderrLogger } from "./log.js";
import { handleCni } from "./plugin.js";

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    return ""; // VERSION may come with no stdin at all
  }
}

const reply = await handleCni(process.env, readStdin(), {
  log: stderrLogger(!!process.env.VXTUN_CNI_DEBUG),
});
// writeSync: the bytes must be out before the exit code is; process.stdout may be async.
if (reply.stdout) writeSync(1, reply.stdout);
process.exitCode = reply.code;
