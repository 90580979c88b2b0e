// Tests start vxtun from source through the lab's launcher.
import { join, resolve } from "node:path";

export { startVxtun, type VxtunProc } from "../../src/lab/vxtun-process.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = [process.execPath, "--import", "tsx", join(REPO, "src/cli/main.ts")];
